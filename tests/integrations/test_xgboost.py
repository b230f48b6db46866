"""XGBoost's training callback, read back from MLflow (SQLite) and W&B (offline) point by point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

xgb = pytest.importorskip("xgboost")

from sklearn.datasets import load_breast_cancer  # noqa: E402

from tests.integrations.readback import COMMON, artifact_paths, download, download_json, history, mlflow_run  # noqa: E402
from tests.support.wandb_env import offline_wandb  # noqa: E402
from tests.support.wandb_reader import read_run, run_file  # noqa: E402
from tracelet_core.integrations.xgboost import TraceletXGBoostCallback  # noqa: E402

PARAMS = {"max_depth": 3, "eta": 0.3, "objective": "binary:logistic", "eval_metric": ["logloss", "error"], "nthread": 1}


def _data() -> tuple[object, object]:
    X, y = load_breast_cancer(return_X_y=True)
    return xgb.DMatrix(X[:400], label=y[:400]), xgb.DMatrix(X[400:], label=y[400:])


def test_every_eval_metric_per_iteration_params_best_importances_and_model_reach_mlflow_and_wandb(
    mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, valid = _data()
    evals_result: dict = {}
    with offline_wandb(tmp_path, monkeypatch) as wandb_dir:
        callback = TraceletXGBoostCallback(
            experiment="xgb", backends=["mlflow", "wandb"], params={"rounds": 30}, **COMMON
        )
        booster = xgb.train(
            PARAMS,
            train,
            30,
            evals=[(train, "train"), (valid, "valid")],
            evals_result=evals_result,
            early_stopping_rounds=3,
            callbacks=[callback],
            verbose_eval=False,
        )
        run = callback.run
        assert run is not None and run.status == "FINISHED"
        assert run.report().complete

        recorded = mlflow_run(mlflow_uri, run)
        assert recorded.info.status == "FINISHED"
        for data in ("train", "valid"):
            for metric in ("logloss", "error"):
                got = history(mlflow_uri, recorded.info.run_id, f"{data}/{metric}")
                expected = evals_result[data][metric]
                assert [s for s, _ in got] == list(range(len(expected)))
                assert [v for _, v in got] == pytest.approx(expected)
        params = recorded.data.params
        assert params["xgboost/tree_train_param/max_depth"] == "3"
        assert params["xgboost/objective"] == "binary:logistic" and params["xgboost/rounds"] == "30"
        assert recorded.data.metrics["best_iteration"] == booster.best_iteration
        assert recorded.data.metrics["best_score"] == pytest.approx(booster.best_score)
        files = artifact_paths(mlflow_uri, recorded.info.run_id)
        assert {"model/model.ubj", "feature_importance/feature_importance_gain.png"} <= set(files)
        importance = download_json(
            mlflow_uri, recorded.info.run_id, "feature_importance/feature_importance.json", tmp_path / "dl"
        )
        assert importance["gain"] == pytest.approx(booster.get_score(importance_type="gain"))
        model = xgb.Booster(
            model_file=str(download(mlflow_uri, recorded.info.run_id, "model/model.ubj", tmp_path / "dl"))
        )
        assert np.allclose(model.predict(valid), booster.predict(valid))

        (offline,) = (wandb_dir / "wandb").glob("offline-run-*")
        wandb_run = read_run(run_file(offline))
        series = wandb_run.series("valid/logloss")
        assert [step for step, _ in series] == list(range(len(evals_result["valid"]["logloss"])))
        assert [v for _, v in series] == pytest.approx(evals_result["valid"]["logloss"])
        assert wandb_run.config["xgboost/tree_train_param/max_depth"] == 3


def test_a_failing_training_inside_with_ends_the_run_failed(mlflow_uri: str) -> None:
    train, _ = _data()

    class Boom(xgb.callback.TrainingCallback):
        def after_iteration(self, model: object, epoch: int, evals_log: dict) -> bool:
            if epoch == 2:
                raise RuntimeError("boom")
            return False

    callback = TraceletXGBoostCallback(experiment="xgb-fail", backends=["mlflow"], delivery="thread", **COMMON)
    with pytest.raises(RuntimeError, match="boom"), callback:
        xgb.train(PARAMS, train, 10, evals=[(train, "train")], callbacks=[callback, Boom()], verbose_eval=False)
    assert callback.run is not None and callback.run.status == "FAILED"
    recorded = mlflow_run(mlflow_uri, callback.run)
    assert recorded.info.status == "FAILED"
    assert [s for s, _ in history(mlflow_uri, recorded.info.run_id, "train/logloss")] == [0, 1, 2]


def test_cv_records_mean_and_std_per_round(mlflow_uri: str) -> None:
    train, _ = _data()
    callback = TraceletXGBoostCallback(experiment="xgb-cv", backends=["mlflow"], delivery="thread", **COMMON)
    results = xgb.cv(PARAMS, train, 5, nfold=3, callbacks=[callback], as_pandas=False)
    recorded = mlflow_run(mlflow_uri, callback.run)
    got = history(mlflow_uri, recorded.info.run_id, "test/logloss-mean")
    assert [v for _, v in got] == pytest.approx(results["test-logloss-mean"])
    assert [s for s, _ in got] == list(range(5))
