"""Where a run is in each tracker (``tracelet open``), and removing it there (``tracelet rm --trackers``).

Both read what the run's delivery recorded for each backend: the tracker's own id of the run and its
location (an MLflow tracking URI, an Aim repository, a W&B run URL or offline folder, a ClearML web
page or offline folder). Credentials are not in the journal: they come back from the environment.
Framework-free, so the server can use it too.

Example:
    >>> from tracelet_core.pipeline.contract import BackendDelivery, DeliveryState
    >>> row = BackendDelivery("mlflow", 9, "r1", "http://mlflow:5000", DeliveryState.CLOSED, None, 0)
    >>> locate(row, experiment_id="4").url
    'http://mlflow:5000/#/experiments/4/runs/r1'
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tracelet_core.pipeline.contract import BackendDelivery
from tracelet_core.pipeline.credentials import restore_credentials

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = ["Removal", "RunPlace", "locate", "mlflow_experiment_id", "remove_from_tracker"]

MLFLOW_UI = "http://127.0.0.1:5000"
AIM_UI = "http://127.0.0.1:43800"


@dataclass(frozen=True)
class RunPlace:
    """Where to see one backend's copy of a run.

    Attributes:
        backend: the backend; native_id: the tracker's id of the run (None: never opened).
        url: the page of the run, when there is one to open.
        command: what starts a local UI for a local store (then ``url`` is where that UI shows the run).
        location: the tracker's location as recorded.
    """

    backend: str
    native_id: str | None
    url: str | None = None
    command: str | None = None
    location: str | None = None


def _is_web(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def locate(delivery: BackendDelivery, experiment_id: str | None = None) -> RunPlace:
    """Where ``delivery``'s backend holds the run (``experiment_id``: MLflow's, for the run's page)."""
    name, native, where = delivery.backend, delivery.native_id, delivery.location
    if native is None or not where:
        return RunPlace(name, native, location=where)
    if name == "mlflow":
        route = f"/#/experiments/{experiment_id}/runs/{native}" if experiment_id else f"/#/runs/{native}"
        if _is_web(where):
            return RunPlace(name, native, where.rstrip("/") + route, location=where)
        return RunPlace(name, native, MLFLOW_UI + route, f"mlflow ui --backend-store-uri {where}", where)
    if name == "aim":
        return RunPlace(name, native, f"{AIM_UI}/runs/{native}", f"aim up --repo {where}", where)
    if _is_web(where):  # W&B and ClearML online: the run's page
        return RunPlace(name, native, where, location=where)
    if name == "wandb":
        return RunPlace(name, native, command=f"wandb sync {where}", location=where)
    return RunPlace(name, native, location=where)


def mlflow_experiment_id(delivery: BackendDelivery) -> str | None:
    """The MLflow experiment of the run (asked of the store; None when it cannot be reached)."""
    if delivery.backend != "mlflow" or not delivery.native_id or not delivery.location:
        return None
    try:
        return str(_mlflow_client(delivery.location).get_run(delivery.native_id).info.experiment_id)
    except Exception:  # unreachable, or the run was deleted there: the page without the experiment
        return None


@dataclass(frozen=True)
class Removal:
    """What removing one backend's copy of a run did: ``done``, and ``message`` for the user."""

    backend: str
    done: bool
    message: str


def remove_from_tracker(delivery: BackendDelivery) -> Removal:
    """Delete one backend's copy of a run: MLflow ``delete_run`` (restorable until MLflow's ``gc``), the Aim
    run in its repository, a W&B or ClearML offline folder. Online W&B and ClearML runs are left (their
    page is named). Never raises: what failed is in the message."""
    name, native, where = delivery.backend, delivery.native_id, delivery.location
    if native is None or not where:
        return Removal(name, True, "never reached the tracker: nothing to delete")
    try:
        if name == "mlflow":
            _mlflow_client(where).delete_run(native)
            return Removal(name, True, f"deleted run {native} in {where} (`mlflow gc` removes it for good)")
        if name == "aim":
            from aim.sdk.repo import Repo

            if not Repo.from_path(where).delete_run(native):
                return Removal(name, False, f"Aim could not delete run {native} in {where}")
            return Removal(name, True, f"deleted run {native} in {where}")
        if name in ("wandb", "clearml") and not _is_web(where):
            if Path(where).is_dir():
                shutil.rmtree(where)
            return Removal(name, True, f"deleted the offline folder {where}")
    except Exception as exc:  # a tracker that is down or refuses: said, and the journal is kept
        return Removal(name, False, f"could not delete run {native} in {where}: {type(exc).__name__}: {exc}")
    return Removal(name, False, f"left in place: delete it at {where}")


def _mlflow_client(location: str) -> MlflowClient:
    """A client of the store at ``location`` (credentials from the environment) that fails fast when it is down."""
    from tracelet_core.trackers.mlflow.reader import MlflowReader

    return MlflowReader(restore_credentials({"mlflow": {"tracking_uri": location}})["mlflow"]["tracking_uri"]).client
