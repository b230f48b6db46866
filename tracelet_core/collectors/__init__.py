"""Collectors: what Tracelet records besides what the user logs, and how users add their own.

Built in, each switched by a setting: system load (``system_metrics``: :mod:`.system` and
:mod:`.gpu`), git state (``git``: :mod:`.git`), the software environment (``environment``:
:mod:`.environment`). Custom collectors come from :func:`register_collector` and from the
``tracelet.collectors`` entry-point group. A run starts them all with :func:`start_collectors`
and stops them with :meth:`CollectorSet.stop`. Importing this package imports neither torch,
Lightning, pynvml nor GitPython.

Timing:
    * One-shot collectors (``interval = None``) run once, one after the other, on the daemon thread
      ``tracelet-collectors-once``, so the training thread never waits for git or package metadata.
    * Periodic collectors share ONE daemon thread, ``tracelet-collectors``. Each is sampled every
      ``sample_interval`` seconds (if it sets one) and reported every ``interval`` seconds: sampling
      often keeps a report representative of its whole interval, reporting rarely keeps trackers
      from being flooded. When the run stops, each periodic collector reports once more, so a run
      shorter than the interval still gets a point.
    * :meth:`CollectorSet.stop` wakes the periodic thread at once, waits for both threads (up to a
      timeout) and then drops anything a late collector still produces.

Step axis:
    System and GPU metrics (``system/*``) are logged with their sample index as step (0, 1, 2...
    over the run, continued when a run resumes), as MLflow's own system-metrics monitor logs them,
    and the time of the report as their timestamp: MLflow's "System metrics" tab and Aim draw them
    as lines. Trackers whose step axis is the trainer's (W&B, ClearML) plot them against wall-clock
    time instead (see :func:`tracelet_core.events.is_system_metric`). A collector's own metrics have
    the step its :class:`Collected` gives, ``None`` by default.

Failures:
    A collector that raises is caught; the first failure of each collector gives one
    :class:`~tracelet_core.errors.TraceletWarning`, later ones a debug log line. A collector that
    fails in ``start`` is skipped for the run; one that fails later is tried again at its next
    interval. Neither stops the other collectors or the run. A collector whose source does not
    exist here (no GPU, not a git repository) raises :class:`CollectorUnavailableError` and is
    skipped with a single log line and no warning.

Example:
    >>> from tracelet_core.collectors import Collector, register_collector
    >>> class QueueDepth(Collector):
    ...     interval = 30.0
    ...     def collect(self):
    ...         return {"data/queue_depth": 3.0}
    >>> register_collector(QueueDepth)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, TypeVar

from tracelet_core import errors
from tracelet_core.collectors.base import (
    Collected,
    Collector,
    CollectorContext,
    CollectorSink,
    CollectorUnavailableError,
    MeanWindow,
    RecordingSink,
)
from tracelet_core.collectors.runner import CollectorSet

if TYPE_CHECKING:
    from tracelet_core.settings import TraceletSettings

__all__ = [
    "ENTRY_POINT_GROUP",
    "Collected",
    "Collector",
    "CollectorContext",
    "CollectorSet",
    "CollectorSink",
    "CollectorUnavailableError",
    "MeanWindow",
    "RecordingSink",
    "builtin_collectors",
    "register_collector",
    "start_collectors",
    "unregister_collector",
]

ENTRY_POINT_GROUP = "tracelet.collectors"

logger = logging.getLogger("tracelet.collectors")


CollectorSource = Collector | Callable[[], Collector]
_S = TypeVar("_S", bound=CollectorSource)
_registered: list[CollectorSource] = []


def register_collector(collector: _S) -> _S:
    """Run ``collector`` in every run this process starts from now on.

    Usable as a class decorator. A class or factory gives each run a fresh collector; an instance
    is shared by the runs (its ``start`` and ``close`` are called once per run).

    Args:
        collector: a :class:`Collector` subclass, a zero-argument factory returning a collector,
            or a collector instance.

    Returns:
        ``collector`` itself.

    Raises:
        TypeError: ``collector`` is neither a Collector nor callable.

    Example:
        >>> @register_collector
        ... class Answer(Collector):
        ...     def collect(self):
        ...         return {"answer": 42.0}
        >>> unregister_collector(Answer)
    """
    if not (isinstance(collector, Collector) or callable(collector)):
        raise TypeError(
            f"register_collector() takes a Collector subclass, instance or factory, not {type(collector).__name__}"
        )
    if collector not in _registered:
        _registered.append(collector)
    return collector


def unregister_collector(collector: CollectorSource) -> None:
    """Undo :func:`register_collector` for later runs (runs already started keep it)."""
    if collector in _registered:
        _registered.remove(collector)


def _instantiate(source: object, origin: str) -> Collector:
    made = source if isinstance(source, Collector) else source() if callable(source) else source
    if not isinstance(made, Collector):
        raise TypeError(f"{origin} gave a {type(made).__name__}, not a tracelet_core Collector")
    return made


def _custom_collectors() -> list[Collector]:
    """Registered and entry-point collectors; one that cannot be loaded is left out with a warning."""
    sources: list[tuple[str, Callable[[], object]]] = [
        (f"entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP})", ep.load)
        for ep in entry_points(group=ENTRY_POINT_GROUP)
    ]
    collectors: list[Collector] = []
    for source in list(_registered):
        origin = f"register_collector({source!r})"
        try:
            collectors.append(_instantiate(source, origin))
        except Exception as exc:
            _warn_unloadable(origin, exc)
    for origin, load in sources:
        try:
            collectors.append(_instantiate(load(), origin))
        except Exception as exc:
            _warn_unloadable(origin, exc)
    return collectors


def _warn_unloadable(origin: str, exc: Exception) -> None:
    errors.warn_once(
        f"collector-load:{origin}",
        f"Tracelet could not load the collector from {origin}: {type(exc).__name__}: {exc}. "
        "The run goes on without it.",
    )


def builtin_collectors(settings: TraceletSettings) -> list[Collector]:
    """The built-in collectors ``settings`` switches on (cheap: nothing is read until they start)."""
    from tracelet_core.collectors.environment import EnvironmentCollector
    from tracelet_core.collectors.git import GitCollector
    from tracelet_core.collectors.gpu import GpuCollector
    from tracelet_core.collectors.system import SystemCollector

    collectors: list[Collector] = []
    if settings.environment:
        collectors.append(EnvironmentCollector(settings.env_include, settings.env_exclude))
    if settings.git:
        collectors.append(GitCollector())
    if settings.system_metrics:
        collectors.append(SystemCollector(interval=settings.system_metrics_interval))
        collectors.append(GpuCollector(interval=settings.system_metrics_interval))
    return collectors


def start_collectors(
    sink: CollectorSink, settings: TraceletSettings, extra: Sequence[Collector] = (), first_sample: int | None = None
) -> CollectorSet:
    """Start a run's collectors: the built-ins ``settings`` enables, custom ones, and ``extra``.

    Returns at once: one-shot collectors run on a daemon thread of their own and periodic ones on
    the daemon thread ``tracelet-collectors``; registered and entry-point collectors are loaded
    there too. Stop them with :meth:`CollectorSet.stop` when the run finishes.

    Args:
        sink: the run; receives metrics (system metrics with their sample index as step), tags, params
            and artifacts.
        settings: the run's settings (``system_metrics``, ``system_metrics_interval``, ``git``,
            ``environment``, ``env_include``, ``env_exclude``; ``enabled=False`` starts nothing).
        extra: more collectors for this run only.
        first_sample: the step of the first system-metrics sample; default: after the journal's last.

    Returns:
        The running collectors.

    Example:
        >>> import tempfile
        >>> from tracelet_core.settings import TraceletSettings
        >>> settings = TraceletSettings(system_metrics=False, git=False, environment=False)
        >>> running = start_collectors(RecordingSink(tempfile.mkdtemp()), settings)
        >>> running.stop()
    """
    if not settings.enabled:
        return CollectorSet(sink, settings=settings)
    collectors = CollectorSet(
        sink,
        [*builtin_collectors(settings), *extra],
        settings=settings,
        discover=_custom_collectors,
        first_sample=first_sample,
    )
    collectors.start()
    return collectors
