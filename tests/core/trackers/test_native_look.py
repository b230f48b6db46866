"""Every tracker shows a run the way its own UI expects: one readable name everywhere, and runs copied
by ``tracelet migrate`` keep their start and end times."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aim.sdk.index_manager import RepoIndexManager
from aim.sdk.repo import Repo
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

import tracelet_core
from tests.support.aim_reader import read_run as read_aim_run
from tests.support.clearml_reader import read_session, session_folder
from tests.support.wandb_env import offline_wandb
from tests.support.wandb_reader import read_run as read_wandb_run
from tracelet_core.migrate import migrate, parse_destination
from tracelet_core.pipeline.journal import Journal
from tracelet_core.settings import TraceletSettings
from tracelet_core.trackers.store import open_reader

T0 = 1_700_000_000.0
NAME = r"[a-z]+-[a-z]+-[0-9]{3}"


def test_a_run_without_a_name_gets_one_readable_name_in_every_tracker(all_trackers: dict[str, Path]) -> None:
    run = tracelet_core.start_logging(
        backends=["mlflow", "wandb", "clearml", "aim"], delivery="thread", system_metrics=False
    )
    run.log_metric("loss", 0.5, step=1)
    report = run.finish()
    assert report.complete, report.summary()

    name = run.name
    assert name is not None
    assert re.fullmatch(NAME, name)
    with Journal(run.journal_path) as journal:
        assert journal.meta().run_name == name  # what `tracelet runs` shows
    ids = run.backend_run_ids
    assert MlflowClient().get_run(ids["mlflow"]).info.run_name == name
    (wandb_file,) = all_trackers["wandb"].glob("wandb/offline-run-*/run-*.wandb")
    assert read_wandb_run(wandb_file).run.display_name == name
    assert read_session(session_folder(all_trackers["clearml"], ids["clearml"])).task["name"] == name
    assert read_aim_run(str(all_trackers["aim"]), ids["aim"]).name == name


def test_a_resumed_run_keeps_its_name(tmp_path: Path) -> None:
    options = {"backends": [], "journal_dir": str(tmp_path / "journal")}
    first = tracelet_core.start_logging(**options)
    first.finish()
    again = tracelet_core.start_logging(run_id=first.id, **options)
    again.finish()
    assert again.name == first.name
    named = tracelet_core.start_logging(run_name="baseline", **options)
    named.finish()
    assert named.name == "baseline"


def _mlflow_source(uri: str, tmp_path: Path) -> float:
    """A finished MLflow run that started at T0; returns when it ended (after its last point, at T0 + 300)."""
    client = MlflowClient(uri)
    experiment = client.create_experiment("old")
    run_id = client.create_run(experiment, run_name="old-run", start_time=int(T0 * 1000)).info.run_id
    metrics = [Metric("loss", 1.0 / (s + 1), int((T0 + 10 * s) * 1000), s) for s in range(1, 31)]
    client.log_batch(run_id, metrics=metrics, params=[Param("lr", "0.001")])
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00\x01")
    client.log_artifact(run_id, str(weights), artifact_path="model")
    ended = T0 + 400
    client.set_terminated(run_id, "FINISHED", end_time=int(ended * 1000))
    return ended


def test_migrate_to_aim_keeps_times_params_once_and_lasting_files(mlflow_uri: str, tmp_path: Path) -> None:
    ended = _mlflow_source(mlflow_uri, tmp_path)
    repo = tmp_path / "aim"
    (outcome,) = migrate(open_reader(f"mlflow:{mlflow_uri}"), parse_destination(f"aim:{repo}", TraceletSettings()))
    assert outcome.action == "copied", outcome.reason

    aim_repo = Repo.from_path(str(repo))
    RepoIndexManager.get_index_manager(aim_repo).index(outcome.destination_id)
    native = aim_repo.get_run(outcome.destination_id)
    assert native is not None
    assert native.creation_time == pytest.approx(T0, abs=1e-3)
    assert native.end_time == pytest.approx(ended, abs=1e-3)
    assert Path(native.artifacts["model/weights.bin"].path).read_bytes() == b"\x00\x01"  # not migrate's scratch
    data = read_aim_run(str(repo), outcome.destination_id)
    assert data.hparams == {"lr": 0.001}
    assert "params" not in data.tracelet  # once, as Aim's own hparams


def test_migrate_to_wandb_keeps_times(mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ended = _mlflow_source(mlflow_uri, tmp_path)
    target = tmp_path / "wandb-out"
    with offline_wandb(tmp_path, monkeypatch):
        destination = parse_destination(f"wandb-offline:{target}", TraceletSettings())
        (outcome,) = migrate(open_reader(f"mlflow:{mlflow_uri}"), destination)
    assert outcome.action == "copied", outcome.reason

    (path,) = target.rglob("run-*.wandb")
    copied = read_wandb_run(path)
    assert copied.run.start_time.ToSeconds() == int(T0)
    assert copied.summary["tracelet/end_time"] == pytest.approx(ended)
