"""A delivery process started ahead of its run (pipeline/standby.py) delivers that run, or steps aside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.waiting import wait_until
from tracelet_core.api import start_run
from tracelet_core.pipeline import standby
from tracelet_core.pipeline.recording import prelaunch_delivery
from tracelet_core.settings import load_settings

JSONL = "tests.support.jsonl_backend:JsonLinesBackend"


def _waiting_process() -> object:
    waiting = standby._waiting
    assert waiting is not None, "no delivery process was started ahead of the run"
    return waiting.process


def test_the_run_is_delivered_by_the_process_started_ahead_of_it() -> None:
    settings = load_settings(experiment="ahead", backends=[JSONL])
    prelaunch_delivery(settings)
    process = _waiting_process()

    run = start_run(settings)
    run.log_metric("loss", 0.5, step=1)
    assert run.finish(timeout=60).complete

    assert standby._waiting is None
    assert process.wait(timeout=60) == 0  # type: ignore[attr-defined]
    records = [json.loads(line) for line in Path("jsonl-for-test.jsonl").read_text().splitlines()]
    assert records[0] == {"open": run.id} and records[-1] == {"close": "FINISHED"}
    assert f"delivering {run.journal_path}" in (run.run_dir / "delivery.log").read_text()


def test_a_changed_environment_gets_a_fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(experiment="ahead", backends=[JSONL])
    prelaunch_delivery(settings)
    stale = _waiting_process()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")  # set after the logger was made

    run = start_run(settings)
    assert run.finish(timeout=60).complete

    wait_until(lambda: stale.poll() is not None, what="the stale process to exit")  # type: ignore[attr-defined]
    assert stale.returncode == 0  # type: ignore[attr-defined]


def test_nothing_is_started_ahead_for_in_process_delivery_or_no_tracker() -> None:
    standby.discard()
    prelaunch_delivery(load_settings(backends=[JSONL], delivery="thread"))
    prelaunch_delivery(load_settings(backends=[]))
    prelaunch_delivery(load_settings(backends=[JSONL], enabled=False))
    assert standby._waiting is None
