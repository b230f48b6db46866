"""The line that says, on stderr, what the end of a run is waiting for.

``finish()`` waits for the trackers to acknowledge the run's last events. A wait under
:data:`SHOW_AFTER` seconds shows nothing. A longer one shows what is left, per tracker
(``tracelet: delivering 81 events to mlflow...``): on a terminal as one line rewritten in place
and cleared when the wait ends, so the run's final line takes its place; elsewhere (a log file, a
pipe) as a plain line every :data:`PLAIN_EVERY` seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import TextIO

from tracelet_core.pipeline.contract import DeliveryState
from tracelet_core.pipeline.journal import Journal

__all__ = ["PLAIN_EVERY", "SHOW_AFTER", "WaitLine", "describe_wait"]

SHOW_AFTER = 0.5
PLAIN_EVERY = 5.0
_TERMINAL_EVERY = 0.1
_CLEAR = "\r\x1b[K"  # back to the line's start, erase it


class WaitLine:
    """A status line on ``stream`` (default: ``sys.stderr`` at each write) while something is awaited.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> line = WaitLine(out, show_after=0)
        >>> line.due()
        True
        >>> line.show("tracelet: delivering 3 events to mlflow...")
        >>> line.clear()
        >>> out.getvalue()
        'tracelet: delivering 3 events to mlflow...\\n'
    """

    def __init__(self, stream: TextIO | None = None, show_after: float = SHOW_AFTER) -> None:
        self._stream = stream
        self._show_at = time.monotonic() + show_after
        self._next = self._show_at
        self._shown = ""

    def due(self) -> bool:
        """Whether :meth:`show` would write now (so that the text is only built when it is)."""
        return time.monotonic() >= self._next

    def show(self, text: str) -> None:
        """Show ``text`` if it is time to (see :meth:`due`); never raises (a closed stream shows nothing)."""
        now = time.monotonic()
        if now < self._next:
            return
        stream = self._stream or sys.stderr
        terminal = _is_terminal(stream)
        self._next = now + (_TERMINAL_EVERY if terminal else PLAIN_EVERY)
        if terminal and text == self._shown:
            return
        try:
            stream.write(f"{_CLEAR}{text}" if terminal else f"{text}\n")
            stream.flush()
        except (OSError, ValueError):
            return
        self._shown = text if terminal else ""

    def clear(self) -> None:
        """Erase the line from a terminal (a plain line stays, as a log's lines do)."""
        if not self._shown:
            return
        stream = self._stream or sys.stderr
        try:
            stream.write(_CLEAR)
            stream.flush()
        except (OSError, ValueError):
            pass
        self._shown = ""


def describe_wait(journal: Journal, backends: Iterable[str], last_seq: int) -> str:
    """What the end of a run waits for, per backend that has not acknowledged ``last_seq``.

    ``tracelet: delivering 81 events to mlflow; opening the aim run...``
    """
    parts = []
    for name, state in sorted(journal.deliveries().items()):
        if name not in backends or state.acked_seq >= last_seq or state.state.stopped:
            continue
        left = journal.count(after=state.acked_seq) - journal.count(after=last_seq)
        events = f"{left} event{'s' if left != 1 else ''}"
        if state.state is DeliveryState.RETRYING:
            parts.append(f"{name} cannot be reached, retrying ({events} waiting)")
        elif state.state is DeliveryState.PENDING:
            parts.append(f"opening the {name} run ({events} waiting)")
        else:
            parts.append(f"delivering {events} to {name}")
    return "tracelet: " + ("; ".join(parts) or "waiting for the trackers") + "..."


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False
