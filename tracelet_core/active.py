"""The active run (what :func:`tracelet_core.get_active_run` returns) and how the program is ending.

A run started by :func:`tracelet_core.start_logging` becomes the active one; its ``finish()`` clears
it. The first run started installs an excepthook that remembers whether the program ends on an
uncaught exception, so that a run still open at exit ends ``FAILED`` rather than ``FINISHED``.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracelet_core.run import Run

__all__ = ["activate", "clear_active_run", "get_active_run", "uncaught_exception"]

_active: Run | None = None
_active_lock = threading.Lock()
_failed = False
_previous_excepthook = sys.excepthook


def get_active_run() -> Run | None:
    """The run started last by :func:`~tracelet_core.start_logging` and not finished yet, or None."""
    return _active


def activate(run: Run) -> None:
    """Make ``run`` the active run (and watch for an uncaught exception from now on)."""
    global _active
    _install_excepthook()
    with _active_lock:
        _active = run


def clear_active_run(run: Run) -> None:
    """``run`` is no longer the active run (a later run that became active stays so)."""
    global _active
    with _active_lock:
        if _active is run:
            _active = None


def uncaught_exception() -> bool:
    """Whether the program is ending because of an uncaught exception (a run still open then ends FAILED)."""
    return _failed


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    global _failed
    _failed = not issubclass(exc_type, SystemExit)
    _previous_excepthook(exc_type, exc, tb)


def _install_excepthook() -> None:
    global _previous_excepthook
    if sys.excepthook is not _excepthook:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _excepthook
