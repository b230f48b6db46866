"""The module-level API: ``start_logging``, ``stop_logging``, ``get_active_run``; and ``start_run`` for
integrations that resolve the settings themselves (the active run itself is kept in :mod:`tracelet_core.active`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracelet_core.active import activate, get_active_run
from tracelet_core.events import RunStatus
from tracelet_core.pipeline.report import DeliveryReport
from tracelet_core.run import Run
from tracelet_core.settings import TraceletSettings, check_keywords, load_settings

__all__ = ["get_active_run", "start_logging", "start_run", "stop_logging"]


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
    return start_run(resolved, run_id, native_ids)


def start_run(
    settings: TraceletSettings,
    run_id: str | None = None,
    native_ids: dict[str, str] | None = None,
    *,
    deferred: bool = False,
) -> Run:
    """Start a run with already-resolved settings and make it the active one: :func:`start_logging`
    without reading any argument, variable or ``.env`` again (integrations such as ``TraceletLogger``).

    Args:
        settings: the run's settings (from :func:`~tracelet_core.settings.load_settings`).
        run_id: resume the run with this Tracelet id (or start a new run with this id).
        native_ids: each tracker's run id to continue when the run's journal is not here.
        deferred: open nothing until the run is first used (see :meth:`Run.start`).

    Returns:
        The run.

    Raises:
        RunInUseError: another live process records into ``run_id``.
        JournalError: the run's journal cannot be created (not with ``deferred``: see :meth:`Run.start`).

    Example:
        >>> import tempfile
        >>> from tracelet_core.settings import load_settings
        >>> settings = load_settings(backends=[], journal_dir=tempfile.mkdtemp(), system_metrics=False,
        ...                          git=False, environment=False)
        >>> run = start_run(settings, deferred=True)
        >>> run.deferred, get_active_run() is run
        (True, True)
        >>> run.finish().status
        'FINISHED'
    """
    run = Run(settings, run_id=run_id, native_ids=native_ids).start(deferred=deferred)
    activate(run)
    return run


def stop_logging(status: RunStatus = "FINISHED", timeout: float | None = None) -> DeliveryReport | None:
    """Finish the active run (see :meth:`Run.finish`); returns its report, or None if no run is active."""
    run = get_active_run()
    return run.finish(status, timeout=timeout) if run is not None else None
