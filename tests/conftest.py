"""Shared fixtures: every test runs in its own directory with no network, no telemetry, no leftovers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracelet_core import errors
from tracelet_core.api import get_active_run


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working directory and a clean Tracelet/MLflow environment for each test.

    Collectors are off by default so each test sees only what it logs; collector tests turn them on.
    """
    for name in list(os.environ):
        if name.startswith(("TRACELET_", "MLFLOW_", "WANDB_", "CLEARML_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("TRACELET_SYSTEM_METRICS", "false")
    monkeypatch.setenv("TRACELET_GIT", "false")
    monkeypatch.setenv("TRACELET_ENVIRONMENT", "false")
    monkeypatch.chdir(tmp_path)
    errors._seen.clear()
    yield tmp_path
    run = get_active_run()
    if run is not None:
        run.finish(timeout=10)


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised MLflow SQLite store, built once: a fresh one costs ~3 s of migrations, a copy 0.2 s."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_uri(mlflow_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh MLflow SQLite store in the test's directory, also set as MLFLOW_TRACKING_URI."""
    target = tmp_path / "mlflow.db"
    shutil.copyfile(mlflow_template, target)
    uri = f"sqlite:///{target}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def all_trackers(mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """MLflow (SQLite), W&B (offline), ClearML (offline) and Aim (local repo), all under tmp_path.

    The variables are inherited by the delivery process, as they would be in a user's shell.
    """
    home = tmp_path / "home"
    places = {
        "wandb": tmp_path / "wandb",
        "clearml": tmp_path / "clearml-cache",
        "aim": tmp_path / "aim",
    }
    for path in (home, *places.values()):
        path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "clearml.conf"
    config.write_text("")
    for name, value in {
        "HOME": home,
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_DATA_HOME": home / ".local" / "share",
        "WANDB_DIR": places["wandb"],
        "CLEARML_CACHE_DIR": places["clearml"],
        "CLEARML_CONFIG_FILE": config,
        "TRACELET_AIM__REPO": places["aim"],
    }.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("CLEARML_OFFLINE_MODE", "1")
    import wandb

    wandb.teardown()  # wandb caches settings read from the environment once per process
    return places
