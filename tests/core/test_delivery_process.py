"""The delivery process lets each backend make its process-wide settings there, once, before delivering;
never in the training process (``TRACELET_DELIVERY=thread``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import tracelet_core
from tests.support.preparing_backend import NOTES

PREPARING = "tests.support.preparing_backend:PreparingBackend"


def _notes() -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(NOTES).read_text(encoding="utf-8").splitlines()]


def _record_one_run(**options: Any) -> None:
    run = tracelet_core.start_logging("prepare", backends=[PREPARING], **options)
    run.log_metric("loss", 0.5, step=1)
    report = run.finish(timeout=60)
    assert report.complete, report.summary()


def test_the_delivery_process_prepares_each_backend_once_before_delivering(isolated: Path) -> None:
    _record_one_run()

    notes = _notes()
    calls = [note["call"] for note in notes]
    assert calls[0] == "prepare" and calls.count("prepare") == 1, calls
    assert calls[1:] == ["open", "write", "close"]
    (pid,) = {note["pid"] for note in notes}  # all in one process: the delivery process
    assert pid != os.getpid() and {note["marker"] for note in notes} == {"1"}


def test_thread_delivery_leaves_the_training_process_alone(isolated: Path) -> None:
    _record_one_run(delivery="thread")

    notes = _notes()
    assert [note["call"] for note in notes] == ["open", "write", "close"]
    assert {(note["pid"], note["marker"]) for note in notes} == {(os.getpid(), None)}
