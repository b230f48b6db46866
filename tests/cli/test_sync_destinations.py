"""`tracelet sync` sends a run where it was recorded to go, says where, and copies files the run released."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import pytest
from click.testing import Result
from mlflow.tracking import MlflowClient

import tracelet_core
from tracelet_core.pipeline.journal import Journal
from tracelet_core.trackers.wandb.reader import WandbOfflineReader


def _store(template: Path, name: str) -> str:
    path = Path(name)
    shutil.copyfile(template, path)
    return f"sqlite:///{path.resolve()}"


def _recorded_for(uri: str) -> tracelet_core.Run:
    """A run recorded for the MLflow store ``uri`` whose delivery never happened (the store was down)."""
    run = tracelet_core.start_logging("dest", backends=[], run_name="meant-for-a", flush_interval=0.01)
    for step in range(20):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    run.finish()
    with Journal(run.journal_path) as journal:
        journal.set_meta(backends=["mlflow"], backend_options={"mlflow": {"tracking_uri": uri}})
        journal.register_backends(["mlflow"])
    return run


def _runs_in(uri: str) -> list[str]:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("dest")
    return [] if experiment is None else [r.info.run_name for r in client.search_runs([experiment.experiment_id])]


def test_sync_sends_to_the_recorded_destination_and_elsewhere_only_when_asked(
    mlflow_template: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded, shell = _store(mlflow_template, "a.db"), _store(mlflow_template, "b.db")
    run = _recorded_for(recorded)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", shell)  # this shell names another store

    result = cli("sync")
    assert f"{run.id[:8]} → mlflow at {recorded}" in result.stdout
    assert f"not to {shell}, which this shell names; --retarget sends it there" in result.stdout
    assert result.stdout.index("→ mlflow at") < result.stdout.index("delivered to mlflow")
    assert _runs_in(recorded) == ["meant-for-a"] and _runs_in(shell) == []

    moved = cli("sync", run.id, "--retarget")
    assert f"→ mlflow at {shell} (retargeted)" in moved.stdout and "delivered to mlflow" in moved.stdout
    assert _runs_in(shell) == ["meant-for-a"] and _runs_in(recorded) == ["meant-for-a"]
    with Journal(run.journal_path) as journal:
        assert journal.meta().backend_options["mlflow"]["tracking_uri"] == shell  # the run goes there from now on


def test_sync_does_not_guess_a_destination_the_run_did_not_record(
    mlflow_template: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _recorded_for(_store(mlflow_template, "a.db"))
    with Journal(run.journal_path) as journal:  # as an older journal: the place was left to MLflow's default
        journal.set_meta(backend_options={"mlflow": {"tracking_uri": None}})
    result = cli("sync", "--json", code=1)
    (outcome,) = json.loads(result.stdout)
    assert outcome["outcome"] == "incomplete" and "does not guess" in outcome["message"]
    assert not Path("mlflow.db").exists()  # nothing landed in the working directory's default store

    monkeypatch.setenv("MLFLOW_TRACKING_URI", shell := _store(mlflow_template, "b.db"))
    named = cli("sync")  # the shell names a store explicitly: used, and said
    assert "the run did not record its destination: this shell's setting" in named.stdout
    assert _runs_in(shell) == ["meant-for-a"]


def test_show_and_sync_know_files_released_after_upload(
    all_trackers: dict[str, Path], mlflow_uri: str, cli: Callable[..., Result]
) -> None:
    run = tracelet_core.start_logging("files", backends=["mlflow"], keep_uploaded_files=False, flush_interval=0.01)
    for name in ("notes.txt", "best-1.ckpt", "best-2.ckpt", "gone.txt"):
        Path(name).write_text(name)
    run.log_artifact("notes.txt", "docs/notes.txt")
    run.log_artifact("best-1.ckpt", "checkpoints/best-1.ckpt")
    run.log_artifact("best-2.ckpt", "checkpoints/best-2.ckpt", metadata={"replaces": "checkpoints/best-1.ckpt"})
    run.log_artifact("gone.txt", "docs/gone.txt")
    assert run.finish(timeout=60).complete

    shown = {a["name"]: a for a in json.loads(cli("show", run.id, "--json").stdout)["artifacts"]}
    assert shown["docs/notes.txt"]["state"] == "uploaded" and shown["docs/notes.txt"]["in"] == ["mlflow"]
    assert shown["checkpoints/best-1.ckpt"]["state"] == "replaced"
    assert shown["checkpoints/best-1.ckpt"]["replaced_by"] == "checkpoints/best-2.ckpt"
    table = cli("show", run.id).stdout
    assert "uploaded (mlflow)" in table and "replaced by checkpoints/best-2.ckpt" in table and "missing" not in table

    # MLflow loses one file (a cleaned artifact store): the other files come back from MLflow for W&B.
    native = run.backend_run_ids["mlflow"]
    artifacts = Path(urlparse(MlflowClient(mlflow_uri).get_run(native).info.artifact_uri).path)
    (artifacts / "docs" / "gone.txt").unlink()
    result = cli("sync", run.id, "--to", "wandb", "--wait", code=1)  # its delivery process may still be ending
    assert "1 file(s) not copied" in result.stdout and "docs/gone.txt" in result.stdout
    assert "is gone" not in result.stderr  # said once in the outcome, not warned per file

    reader = WandbOfflineReader(str(all_trackers["wandb"]))
    (source,) = reader.list_runs()
    copied = {ref.name for ref in reader.read_run(source, Path("scratch")).artifacts}
    assert {"docs/notes.txt", "checkpoints/best-2.ckpt"} <= copied and "docs/gone.txt" not in copied


def test_show_marks_a_file_missing_only_when_no_tracker_has_it(cli: Callable[..., Result]) -> None:
    run = tracelet_core.start_logging("files", backends=[], flush_interval=0.01)
    Path("model.bin").write_bytes(b"\0" * 8)
    run.log_artifact("model.bin")
    run.finish()
    assert json.loads(cli("show", run.id, "--json").stdout)["artifacts"][0]["state"] == "kept"
    for staged in (run.run_dir / "files").rglob("model.bin"):
        staged.unlink()
    (shown,) = json.loads(cli("show", run.id, "--json").stdout)["artifacts"]
    assert shown["state"] == "missing" and shown["in"] == []
    assert "missing" in cli("show", run.id).stdout


def test_a_destination_named_by_the_sdks_variable_is_recorded_with_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose store came from ``MLFLOW_TRACKING_URI`` journals it, so a later sync does not depend on
    the shell (the tracker is down here: the run never reached it)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    run = tracelet_core.start_logging("dest", backends=["mlflow"], delivery="thread", finish_timeout=0.5)
    run.log_metric("loss", 1.0, step=0)
    run.finish()
    with Journal(run.journal_path) as journal:
        assert journal.meta().backend_options["mlflow"]["tracking_uri"] == "http://127.0.0.1:9"
