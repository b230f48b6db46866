"""Reading an integration's run back from MLflow (SQLite), W&B (offline file) and Aim, for the tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlflow.entities import Run as MlflowRun
from mlflow.tracking import MlflowClient

from tracelet_core.run import Run

COMMON = {"system_metrics": False, "git": False, "environment": False}


def mlflow_runs(uri: str, experiment: str) -> list[MlflowRun]:
    """Every run of ``experiment``, oldest first."""
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r}"
    return list(reversed(client.search_runs([found.experiment_id], max_results=1000)))


def mlflow_run(uri: str, run: Run) -> MlflowRun:
    """The MLflow run of a Tracelet run."""
    return MlflowClient(tracking_uri=uri).get_run(run.backend_run_ids["mlflow"])


def history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    """``[(step, value), ...]`` of one metric, in step order."""
    points = MlflowClient(tracking_uri=uri).get_metric_history(run_id, key)
    return sorted((p.step, p.value) for p in points)


def artifact_paths(uri: str, run_id: str, path: str | None = None) -> list[str]:
    """Every artifact file of a run, recursively."""
    client = MlflowClient(tracking_uri=uri)
    found: list[str] = []
    for info in client.list_artifacts(run_id, path):
        found.extend(artifact_paths(uri, run_id, info.path) if info.is_dir else [info.path])
    return found


def download(uri: str, run_id: str, path: str, target: Path) -> Path:
    """One artifact file, downloaded under ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    return Path(MlflowClient(tracking_uri=uri).download_artifacts(run_id, path, str(target)))


def download_json(uri: str, run_id: str, path: str, target: Path) -> Any:
    return json.loads(download(uri, run_id, path, target).read_text())
