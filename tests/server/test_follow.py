"""``tracelet server --follow``: runs recorded in local journals (tracked to MLflow alone, or to nothing)
appear on the server, each event once, without changing the trainer.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import tracelet_core
from tests.server.conftest import ServerProcess
from tracelet_core.client import TraceletClient
from tracelet_core.server.follow import JournalFollower
from tracelet_core.server.store.database import open_store
from tracelet_core.server.store.queries import history

STEPS = 100


def _journal_only_run(name: str) -> tracelet_core.Run:
    run = tracelet_core.start_logging("followed", backends=[], run_name=name)
    run.log_params({"lr": 0.1})
    for step in range(STEPS):
        run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / STEPS}, step=step)
    run.finish("FINISHED", timeout=30)
    return run


def test_a_journal_is_ingested_once_however_often_it_is_read(sqlite_url: str) -> None:
    run = _journal_only_run("once")
    store = open_store(sqlite_url)
    follower = JournalFollower(store, Path(".tracelet"))
    assert follower.follow_once() > 2 * STEPS
    assert follower.follow_once() == 0
    with store.session() as session:
        loss = history(session, run.id, "loss")
    assert [(s, v) for s, _, v in loss.points] == [(s, 1.0 / (s + 1)) for s in range(STEPS)]
    store.close()


def test_runs_sent_to_the_tracelet_tracker_are_left_to_it(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_TRACELET__URL", "http://127.0.0.1:9")  # nothing listens: stays in the journal
    run = tracelet_core.start_logging("followed", backends=["tracelet"])
    run.log_metric("loss", 1.0, step=0)
    run.flush()
    store = open_store(sqlite_url)
    assert JournalFollower(store, Path(".tracelet")).follow_once() == 0
    store.close()
    run.finish("FINISHED", timeout=1)


@pytest.mark.server
def test_follow_picks_up_a_run_tracked_to_mlflow_only(sqlite_url: str, mlflow_uri: str, tmp_path: Path) -> None:
    server = ServerProcess(sqlite_url, tmp_path, follow=tmp_path / ".tracelet").start()
    try:
        run = tracelet_core.start_logging("followed", backends=["mlflow"], run_name="mlflow-only")
        for step in range(STEPS):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.finish("FINISHED", timeout=60)
        with TraceletClient(server.url) as client:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                found = list(client.search_runs("status=FINISHED"))
                if found:
                    break
                time.sleep(0.1)
            assert [(r["id"], r["name"]) for r in found] == [(run.id, "mlflow-only")]
            points = client.history(run.id, "loss")["points"]
            assert [(p[0], p[2]) for p in points] == [(s, 1.0 / (s + 1)) for s in range(STEPS)]
    finally:
        server.stop()
