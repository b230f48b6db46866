"""The line that says what the end of a run waits for (behaviour, not timing)."""

from __future__ import annotations

import io

import pytest

import tracelet_core
from tests.support.fault_backends import SLOW, SlowBackend
from tracelet_core.pipeline.progress import WaitLine


def test_a_slow_tracker_is_named_while_the_run_ends(capsys: pytest.CaptureFixture[str]) -> None:
    SlowBackend.delay = 0.3  # eight media items: well over the half second after which the line shows
    run = tracelet_core.start_logging("slow-end", backends=[SLOW], delivery="thread")
    for step in range(8):
        run.log_text("note", f"text {step}", step=step)
    report = run.finish(timeout=60)

    assert report.complete
    waiting = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tracelet: ")]
    assert waiting, "no line said what the end of the run waited for"
    assert any(f"to {SLOW}" in line and "delivering" in line for line in waiting), waiting


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_line_is_rewritten_in_place_then_erased() -> None:
    out = _Terminal()
    line = WaitLine(out, show_after=0)
    line.show("tracelet: delivering 81 events to mlflow...")
    line.clear()
    assert out.getvalue() == "\r\x1b[Ktracelet: delivering 81 events to mlflow...\r\x1b[K"


def test_a_short_wait_shows_nothing() -> None:
    out = _Terminal()
    line = WaitLine(out, show_after=3600)
    assert not line.due()
    line.show("tracelet: delivering 1 event to mlflow...")
    line.clear()
    assert out.getvalue() == ""
