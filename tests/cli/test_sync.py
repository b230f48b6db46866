"""`tracelet sync`: what the trackers missed reaches them exactly once, and runs go to trackers they never saw."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from mlflow.tracking import MlflowClient

import tracelet_core
from tests.support.mlflow_server import MlflowServer, free_port
from tracelet_core.pipeline.delivery import delivery_lock
from tracelet_core.pipeline.journal import Journal

TRAIN = """
import tracelet_core
run = tracelet_core.start_logging("outage", backends=["mlflow"], run_name="down-all-along",
                                  finish_timeout=1, give_up_after=1, max_retry_backoff=0.5)
run.log_params({"lr": 0.01, "model": {"layers": 3}})
run.set_tags({"team": "vision"})
for step in range(300):
    run.log_metrics({"train/loss": 1.0 / (step + 1), "val/acc": step / 300}, step=step)
print(run.finish().summary(), flush=True)
print("RUN", run.id, flush=True)
"""


def _wait_for_delivery_process_exit(run_dir: Path, timeout: float = 60) -> str:
    log = run_dir / "delivery.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        if "delivery process exits" in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"the delivery process did not exit:\n{log.read_text() if log.exists() else '(no log)'}")


def _journal_points(journal_path: Path, key: str) -> list[tuple[int, float]]:
    with Journal(journal_path) as journal:
        return [(e.step or 0, e.value) for e in journal.read(0, 1_000_000) if e.kind == "metric" and e.key == key]


@pytest.mark.server
@pytest.mark.slow
def test_sync_after_an_outage_delivers_every_point_exactly_once(
    tmp_path: Path, mlflow_template: Path, tracelet: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    port = free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}")  # no server there yet
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(TRAIN))
    trained = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert trained.returncode == 0, trained.stderr
    assert "undelivered" in trained.stdout
    run_id = trained.stdout.split("RUN", 1)[1].split()[0]
    run_dir = tmp_path / ".tracelet" / "outage" / run_id
    assert "giving up" in _wait_for_delivery_process_exit(run_dir)

    listed = json.loads(tracelet("runs", "--pending", "--json", env=env).stdout)
    assert [r["run_id"] for r in listed] == [run_id]
    assert listed[0]["backends"][0]["state"] == "gave_up" and listed[0]["backends"][0]["delivered"] == 0

    (tmp_path / "server").mkdir()
    shutil.copyfile(mlflow_template, tmp_path / "server" / "mlflow.db")  # spares the server its migrations
    server = MlflowServer(tmp_path / "server", port=port).start()
    try:
        first = tracelet("sync", env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"{run_id[:8]}: delivered to mlflow" in first.stdout

        client = MlflowClient(server.url)
        experiment = client.get_experiment_by_name("outage")
        (native,) = client.search_runs([experiment.experiment_id])
        for key in ("train/loss", "val/acc"):
            history = client.get_metric_history(native.info.run_id, key)
            assert sorted((m.step, m.value) for m in history) == _journal_points(run_dir / "journal.sqlite", key)
            assert len(history) == 300
        assert native.data.params == {"lr": "0.01", "model/layers": "3"}
        assert native.data.tags["team"] == "vision" and native.data.tags["tracelet.run_id"] == run_id
        assert native.info.status == "FINISHED" and native.info.run_name == "down-all-along"

        second = tracelet("sync", env=env)
        assert second.returncode == 0 and "Nothing to sync" in second.stdout
        again = tracelet("sync", run_id[:6], env=env)
        assert again.returncode == 0 and "nothing to deliver" in again.stdout
        assert len(client.search_runs([experiment.experiment_id])) == 1
        assert len(client.get_metric_history(native.info.run_id, "train/loss")) == 300
        shown = json.loads(tracelet("show", run_id, "--json", env=env).stdout)
        assert shown["backends"][0] | {"location": None} == {
            "name": "mlflow",
            "state": "closed",
            "delivered": shown["events"],
            "pending": 0,
            "rejected": 0,
            "native_id": native.info.run_id,
            "location": None,
            "error": None,
        }
    finally:
        server.stop()


def _journal_only_run(**options: object) -> tracelet_core.Run:
    run = tracelet_core.start_logging("offline", backends=[], run_name="no-tracker", flush_interval=0.01, **options)
    run.log_params({"optimizer": {"lr": 0.1}})
    run.set_tags({"seed": "1"})
    for step in range(50):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    return run


def test_a_run_made_without_a_tracker_is_sent_later_with_to(mlflow_uri: str, cli: Callable[..., Result]) -> None:
    run = _journal_only_run()
    artifact = Path("notes.txt")
    artifact.write_text("hello")
    run.log_artifact(artifact, "docs/notes.txt")
    run.finish()

    result = cli("sync", run.id[:5], "--to", "mlflow")
    assert "delivered to mlflow" in result.stdout
    client = MlflowClient(mlflow_uri)
    (native,) = client.search_runs([client.get_experiment_by_name("offline").experiment_id])
    history = client.get_metric_history(native.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(s, 1.0 / (s + 1)) for s in range(50)]
    assert native.data.params == {"optimizer/lr": "0.1"} and native.data.tags["seed"] == "1"
    assert {a.path for a in client.list_artifacts(native.info.run_id, "docs")} == {"docs/notes.txt"}
    with Journal(run.journal_path) as journal:
        assert journal.meta().backends == ("mlflow",)  # a plain `tracelet sync` now knows the run goes there

    assert "nothing to deliver" in cli("sync", run.id, "--to", "mlflow").stdout
    assert "Nothing to sync" in cli("sync").stdout
    assert len(client.get_metric_history(native.info.run_id, "loss")) == 50


def test_a_crashed_run_is_ended_killed_and_delivered(
    mlflow_uri: str, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    script = tmp_path / "crash.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, tracelet_core
            run = tracelet_core.start_logging("crash", backends=[], flush_interval=0.01)
            for step in range(20):
                run.log_metric("loss", float(step), step=step)
            run.flush()  # journaled
            os._exit(3)  # no finish, no atexit: as if killed
            """
        )
    )
    subprocess.run([sys.executable, str(script)], timeout=60, check=False)
    (run,) = json.loads(cli("runs", "--json").stdout)
    assert run["status"] == "INTERRUPTED"

    assert "delivered to mlflow" in cli("sync", "--to", "mlflow").stdout
    client = MlflowClient(mlflow_uri)
    (native,) = client.search_runs([client.get_experiment_by_name("crash").experiment_id])
    assert native.info.status == "KILLED"
    assert len(client.get_metric_history(native.info.run_id, "loss")) == 20
    assert json.loads(cli("runs", "--json").stdout)[0]["status"] == "KILLED"


def test_a_run_another_process_delivers_is_left_alone(mlflow_uri: str, cli: Callable[..., Result]) -> None:
    run = _journal_only_run()
    run.finish()
    lock = delivery_lock(run.run_dir, blocking=False)
    assert lock.acquire()
    try:
        result = cli("sync", run.id, "--to", "mlflow", code=1)
    finally:
        lock.release()
    assert "still delivering" in result.stdout
    assert "delivered to mlflow" in cli("sync", run.id, "--to", "mlflow").stdout


def test_sync_says_what_is_wrong(cli: Callable[..., Result]) -> None:
    run = _journal_only_run()
    run.finish()
    assert "No run matches 'zzz'" in cli("sync", "zzz", code=1).stderr
    assert "unknown" in cli("sync", run.id, "--to", "nope", code=2).stderr.lower()
