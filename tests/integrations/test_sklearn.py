"""scikit-learn's ``track``: a GridSearchCV as a parent run with a child run per candidate, read back
from MLflow (SQLite) and Aim point by point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GridSearchCV, train_test_split

from tests.integrations.readback import COMMON, artifact_paths, download, mlflow_run, mlflow_runs
from tests.support.aim_reader import read_run as read_aim_run
from tracelet_core.integrations.sklearn import track

GRID = {"C": [0.05, 0.5, 5.0]}


def test_a_grid_search_is_a_parent_run_with_one_child_per_candidate_in_mlflow_and_aim(
    mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACELET_AIM__REPO", str(tmp_path / "aim"))
    X, y = load_iris(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0)
    search = GridSearchCV(LogisticRegression(max_iter=500), GRID, cv=3)
    with track(
        search,
        validation=(X_val, y_val),
        scoring=["accuracy", "f1_macro"],
        experiment="iris",
        backends=["mlflow", "aim"],
        delivery="thread",
        **COMMON,
    ) as model:
        model.fit(X_train, y_train)
        predicted = model.predict(X_val)
    parent = model.run
    assert parent is not None and parent.status == "FINISHED"
    results = search.cv_results_

    recorded = mlflow_run(mlflow_uri, parent)
    metrics, params = recorded.data.metrics, recorded.data.params
    assert params["best/C"] == str(search.best_params_["C"])
    assert params["sklearn/estimator__C"] == "1.0" and params["estimator"] == "GridSearchCV"
    assert metrics["best_score"] == pytest.approx(search.best_score_)
    assert metrics["val/accuracy"] == pytest.approx(accuracy_score(y_val, predicted))
    assert metrics["val/f1_macro"] == pytest.approx(f1_score(y_val, predicted, average="macro"))
    assert metrics["fit_time_s"] > 0 and metrics["predict_time_s"] > 0
    files = artifact_paths(mlflow_uri, recorded.info.run_id)
    assert {"model/model.skops", "search/cv_results.csv"} <= set(files)
    import skops.io as sio

    path = download(mlflow_uri, recorded.info.run_id, "model/model.skops", tmp_path / "dl")
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    assert np.array_equal(loaded.predict(X_val), predicted)

    children = [r for r in mlflow_runs(mlflow_uri, "iris") if r.info.run_id != recorded.info.run_id]
    assert len(children) == len(GRID["C"])
    by_index = {int(r.data.tags["tracelet.candidate_index"]): r for r in children}
    for index, child in by_index.items():
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == recorded.info.run_id
        assert child.data.tags["tracelet.parent_run_id"] == parent.id
        assert child.data.params["sklearn/C"] == str(GRID["C"][index])
        assert child.data.metrics["cv/mean_test_score"] == pytest.approx(results["mean_test_score"][index])
        assert child.data.metrics["cv/rank_test_score"] == results["rank_test_score"][index]

    aim = read_aim_run(str(tmp_path / "aim"), parent.backend_run_ids["aim"])
    assert aim.hparams["best"]["C"] == search.best_params_["C"]
    # Aim keeps Tracelet's train/val/test prefixes as its "subset" context
    assert aim.metrics[("accuracy", (("subset", "val"),))][0][2] == pytest.approx(accuracy_score(y_val, predicted))
    for child in model.child_runs:
        child_aim = read_aim_run(str(tmp_path / "aim"), child.backend_run_ids["aim"])
        assert f"tracelet.parent_run_id:{parent.id}" in child_aim.tags
        index = int(child.name.rsplit("-", 1)[-1]) if child.name else -1
        assert child_aim.hparams["sklearn"]["C"] == GRID["C"][index]


def test_a_plain_estimator_records_params_scores_and_a_failed_end(mlflow_uri: str) -> None:
    X, y = load_iris(return_X_y=True)
    with (
        pytest.raises(ValueError, match="features"),
        track(LogisticRegression(C=2.0), experiment="plain", backends=["mlflow"], delivery="thread", **COMMON) as model,
    ):
        model.fit(X, y)
        model.predict(np.zeros((1, 7)))  # wrong width: raises
    recorded = mlflow_run(mlflow_uri, model.run)
    assert recorded.info.status == "FAILED"
    assert recorded.data.params["sklearn/C"] == "2.0" and "fit_time_s" in recorded.data.metrics


def test_a_searchs_candidates_share_the_searchs_wandb_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.model_selection import RandomizedSearchCV

    from tests.support.wandb_env import offline_wandb
    from tests.support.wandb_reader import read_run, run_file

    X, y = load_iris(return_X_y=True)
    search = RandomizedSearchCV(LogisticRegression(max_iter=500), GRID, n_iter=2, cv=2, random_state=0)
    with offline_wandb(tmp_path, monkeypatch) as wandb_dir:
        with track(search, experiment="iris-wandb", backends=["wandb"], delivery="thread", **COMMON) as model:
            model.fit(X, y)
        runs = [read_run(run_file(path)) for path in (wandb_dir / "wandb").glob("offline-run-*")]
    assert len(runs) == 3 and model.run is not None
    groups = {run.run.run_group for run in runs}
    assert groups == {f"search-{model.run.id[:8]}"}
    children = [run for run in runs if f"tracelet.parent_run_id:{model.run.id}" in run.tags]
    assert len(children) == 2
