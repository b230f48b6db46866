"""LightGBM's callback, read back from MLflow (SQLite) and Aim point by point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

lgb = pytest.importorskip("lightgbm")

from sklearn.datasets import load_breast_cancer  # noqa: E402

from tests.integrations.readback import COMMON, artifact_paths, download, download_json, history, mlflow_run  # noqa: E402
from tests.support.aim_reader import read_run as read_aim_run  # noqa: E402
from tracelet_core.integrations.lightgbm import TraceletLightGBMCallback  # noqa: E402

PARAMS = {"objective": "binary", "metric": ["binary_logloss", "auc"], "num_leaves": 7, "verbose": -1, "num_threads": 1}


def test_every_eval_metric_per_iteration_params_best_importances_and_model_reach_mlflow_and_aim(
    mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACELET_AIM__REPO", str(tmp_path / "aim"))
    X, y = load_breast_cancer(return_X_y=True)
    train, valid = lgb.Dataset(X[:400], y[:400]), lgb.Dataset(X[400:], y[400:])
    recorded_evals: dict = {}
    with TraceletLightGBMCallback(
        experiment="lgb", backends=["mlflow", "aim"], delivery="thread", **COMMON
    ) as callback:
        booster = lgb.train(
            PARAMS,
            train,
            40,
            valid_sets=[valid],
            valid_names=["valid"],
            callbacks=[callback, lgb.record_evaluation(recorded_evals), lgb.early_stopping(3, verbose=False)],
        )
    run = callback.run
    assert run is not None and run.status == "FINISHED" and run.report().complete

    recorded = mlflow_run(mlflow_uri, run)
    run_id = recorded.info.run_id
    for metric in ("binary_logloss", "auc"):
        expected = recorded_evals["valid"][metric]
        got = history(mlflow_uri, run_id, f"valid/{metric}")
        assert [s for s, _ in got] == list(range(len(expected)))
        assert [v for _, v in got] == pytest.approx(expected)
    assert recorded.data.params["lightgbm/num_leaves"] == "7"
    assert recorded.data.metrics["best_iteration"] == booster.best_iteration
    assert recorded.data.metrics["best_score/valid/auc"] == pytest.approx(booster.best_score["valid"]["auc"])
    assert {"model/model.txt", "feature_importance/feature_importance_gain.png"} <= set(
        artifact_paths(mlflow_uri, run_id)
    )
    importance = download_json(mlflow_uri, run_id, "feature_importance/feature_importance.json", tmp_path / "dl")
    split = dict(zip(booster.feature_name(), booster.feature_importance("split").tolist(), strict=True))
    assert importance["split"] == split
    model = lgb.Booster(model_file=str(download(mlflow_uri, run_id, "model/model.txt", tmp_path / "dl")))
    assert np.allclose(model.predict(X[400:]), booster.predict(X[400:]))

    aim = read_aim_run(str(tmp_path / "aim"), run.backend_run_ids["aim"])
    points = aim.metrics[("valid/auc", ())]
    assert [step for step, _, _ in points] == list(range(len(recorded_evals["valid"]["auc"])))
    assert [value for _, _, value in points] == pytest.approx(recorded_evals["valid"]["auc"])
    assert aim.hparams["lightgbm"]["num_leaves"] == 7


def test_the_sklearn_estimator_without_with_ends_the_run_at_the_last_iteration(mlflow_uri: str) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    callback = TraceletLightGBMCallback(experiment="lgb-sk", backends=["mlflow"], delivery="thread", **COMMON)
    classifier = lgb.LGBMClassifier(n_estimators=5, num_leaves=7, verbose=-1)
    classifier.fit(X[:400], y[:400], eval_X=(X[400:],), eval_y=(y[400:],), callbacks=[callback])
    assert callback.run is not None and callback.run.status == "FINISHED"
    recorded = mlflow_run(mlflow_uri, callback.run)
    assert [s for s, _ in history(mlflow_uri, recorded.info.run_id, "valid_0/binary_logloss")] == list(range(5))
