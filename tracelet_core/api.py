"""The module-level API: ``start_logging``, ``stop_logging``, ``get_active_run``."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from tracelet_core.events import RunStatus
from tracelet_core.pipeline.report import DeliveryReport
from tracelet_core.run import Run
from tracelet_core.settings import TraceletSettings, check_keywords, load_settings

__all__ = ["get_active_run", "start_logging", "stop_logging"]

_active: Run | None = None
_active_lock = threading.Lock()
_failed = False
_previous_excepthook = sys.excepthook


def start_logging(
    experiment: str | None = None,
    backends: list[str] | None = None,
    *,
    run_name: str | None = None,
    tags: dict[str, Any] | None = None,
    run_id: str | None = None,
    native_ids: dict[str, str] | None = None,
    settings: TraceletSettings | None = None,
    journal_dir: str | Path | None = None,
    **options: Any,
) -> Run:
    """Start a tracked run and make it the active one.

    Arguments left as ``None`` come from ``TRACELET_*`` environment variables, a ``.env`` file, or
    the defaults (see :class:`~tracelet_core.settings.TraceletSettings`).

    Args:
        experiment: experiment (MLflow) / project (W&B, ClearML, Aim) name.
        backends: trackers to send to, e.g. ``["mlflow", "wandb"]``; ``[]`` keeps the run in the journal only.
        run_name: display name of the run.
        tags: run tags.
        run_id: resume the run with this Tracelet id (or start a new run with this id).
        native_ids: each tracker's run id to continue when the run's journal is not here.
        settings: a ready settings object; the other arguments override it.
        journal_dir: where the run's journal is kept.
        **options: any other :class:`TraceletSettings` field (``delivery="thread"``, ``system_metrics=False``...).

    Returns:
        The run, which is also a context manager: an exception inside the ``with`` block ends it FAILED.

    Raises:
        TypeError: a keyword is neither an argument above nor a settings field (``name=`` for
            ``run_name=``); the message suggests the closest one and lists them all.
        ConfigurationError: a setting is invalid (the message names it, where it came from, its value
            and what is allowed).

    Example:
        >>> import tracelet_core, tempfile
        >>> run = tracelet_core.start_logging("demo", backends=[], journal_dir=tempfile.mkdtemp(),
        ...                                   system_metrics=False, git=False, environment=False)
        >>> run.log_metrics({"loss": 0.25, "acc": 0.9}, step=1)
        >>> tracelet_core.get_active_run() is run
        True
        >>> tracelet_core.stop_logging().status
        'FINISHED'
    """
    check_keywords(start_logging, options)
    resolved = load_settings(
        settings,
        experiment=experiment,
        backends=backends,
        run_name=run_name,
        tags=tags,
        journal_dir=journal_dir,
        **options,
    )
    return _start_run(resolved, run_id, native_ids)


def _start_run(
    settings: TraceletSettings, run_id: str | None, native_ids: dict[str, str] | None, *, deferred: bool = False
) -> Run:
    """Start a run with resolved settings and make it the active one (``deferred``: see :meth:`Run.start`)."""
    global _active
    _install_excepthook()
    run = Run(settings, run_id=run_id, native_ids=native_ids).start(deferred=deferred)
    with _active_lock:
        _active = run
    return run


def get_active_run() -> Run | None:
    """The run started last by :func:`start_logging` and not finished yet, or None."""
    return _active


def stop_logging(status: RunStatus = "FINISHED", timeout: float | None = None) -> DeliveryReport | None:
    """Finish the active run (see :meth:`Run.finish`); returns its report, or None if no run is active."""
    run = _active
    return run.finish(status, timeout=timeout) if run is not None else None


def _clear_active_run(run: Run) -> None:
    global _active
    with _active_lock:
        if _active is run:
            _active = None


def _uncaught_exception() -> bool:
    """Whether the program is ending because of an uncaught exception (the run then ends FAILED)."""
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
