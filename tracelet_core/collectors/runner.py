"""Running a run's collectors: one daemon thread for periodic ones, one for one-shot ones.

See the package docstring (:mod:`tracelet_core.collectors`) for the timing, step-axis and failure rules.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tracelet_core import errors
from tracelet_core.collectors.base import (
    Collected,
    Collector,
    CollectorContext,
    CollectorSink,
    CollectorUnavailableError,
)
from tracelet_core.inputs import to_metric_value
from tracelet_core.pipeline.files import JOURNAL_FILENAME
from tracelet_core.pipeline.journal import Journal

if TYPE_CHECKING:
    from tracelet_core.settings import TraceletSettings

__all__ = ["ONE_SHOT_THREAD_NAME", "PERIODIC_THREAD_NAME", "CollectorSet"]

PERIODIC_THREAD_NAME = "tracelet-collectors"
ONE_SHOT_THREAD_NAME = "tracelet-collectors-once"

logger = logging.getLogger("tracelet.collectors")
_ALWAYS_SAMPLED = "system/memory_percent"  # in every report of the system collector


@dataclass
class _Schedule:
    collector: Collector
    interval: float
    sample_interval: float | None
    next_sample: float
    next_report: float


def next_sample_index(run_dir: Path) -> int:
    """The step after the last system-metrics sample in the run's journal (0 when there is none).

    A resumed run goes on counting where its previous session stopped, as MLflow's own monitor does.
    """
    journal_path = run_dir / JOURNAL_FILENAME
    if not journal_path.exists():
        return 0
    try:
        with Journal(journal_path) as journal:
            steps = [event.step for event in journal.metric_history(_ALWAYS_SAMPLED) if event.step is not None]
    except (errors.TraceletError, sqlite3.Error, OSError):  # unreadable now: count from 0
        return 0
    return max(steps, default=-1) + 1


def _next_due(previous: float, period: float, now: float) -> float:
    """Keep the phase of a timer; skip ticks missed while a slow call ran instead of bunching them."""
    due = previous + period
    return due if due > now else now + period


class CollectorSet:
    """Runs a run's collectors on daemon threads, from :meth:`start` until :meth:`stop`.

    Args:
        sink: where the data goes (the run).
        collectors: collectors to run.
        settings: the run's settings, passed on to each collector's ``start``.
        discover: called on the collector thread for more collectors (registered and entry-point
            ones), so that loading them never holds up the caller.
        first_sample: the step of the first system-metrics sample (see :class:`CollectorContext`); by
            default the one after the last in the run's journal, 0 for a new run.

    Example:
        >>> import tempfile
        >>> from tracelet_core.collectors import RecordingSink
        >>> class Tagger(Collector):
        ...     def collect(self):
        ...         return Collected(tags={"who": "doctest"})
        >>> sink = RecordingSink(tempfile.mkdtemp())
        >>> collectors = CollectorSet(sink, [Tagger()])
        >>> collectors.start(); collectors.stop()
        >>> sink.tags
        {'who': 'doctest'}
    """

    def __init__(
        self,
        sink: CollectorSink,
        collectors: Sequence[Collector] = (),
        settings: TraceletSettings | None = None,
        discover: Callable[[], list[Collector]] | None = None,
        first_sample: int | None = None,
    ) -> None:
        self._sink = sink
        self._initial = list(collectors)
        self._discover = discover
        run_dir = Path(sink.run_dir)
        first = next_sample_index(run_dir) if first_sample is None else first_sample
        self._context = CollectorContext(run_dir, settings, first)
        self._next_sample = first
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._once_thread: threading.Thread | None = None

    @property
    def next_sample(self) -> int:
        """The step after the last sample reported: where collectors that replace these go on counting."""
        with self._lock:
            return self._next_sample

    def start(self) -> None:
        """Start the collector thread (once; later calls do nothing)."""
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._main, name=PERIODIC_THREAD_NAME, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Report the periodic collectors one last time, wait for every thread, close the collectors.

        Idempotent. Whatever a collector still produces after ``timeout`` seconds is dropped.

        Args:
            timeout: seconds to wait in all, for the periodic and the one-shot collectors together.
        """
        self._stop_event.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            once_thread = self._once_thread
        if once_thread is not None and once_thread is not threading.current_thread():
            once_thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._closed = True
        stuck = [t.name for t in (thread, once_thread) if t is not None and t.is_alive()]
        if stuck:
            errors.warn_once(
                "collectors:stop-timeout",
                f"Tracelet collectors were still running {timeout:g} s after the run stopped "
                f"(threads {', '.join(stuck)}); what they collect from now on is not recorded.",
            )

    # The thread side ---------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._start_and_run()
        except Exception as exc:  # a bug here must end the collectors, never the run
            logger.debug("Tracelet's collector thread failed", exc_info=True)
            errors.warn_once("collectors:thread", f"Tracelet's collectors stopped early: {type(exc).__name__}: {exc}")

    def _start_and_run(self) -> None:
        collectors = list(self._initial)
        if self._discover is not None:
            try:
                collectors += self._discover()
            except Exception as exc:  # a broken plugin environment must not stop the built-ins
                errors.warn_once("collectors:discover", f"Tracelet could not load custom collectors: {exc}")
        one_shot = [c for c in collectors if c.interval is None]
        periodic = [c for c in collectors if c.interval is not None]
        if one_shot:
            once_thread = threading.Thread(
                target=self._run_one_shot, args=(one_shot,), name=ONE_SHOT_THREAD_NAME, daemon=True
            )
            with self._lock:
                self._once_thread = once_thread
            once_thread.start()
        self._run_periodic(periodic)

    def _run_one_shot(self, collectors: list[Collector]) -> None:
        for collector in collectors:
            if self._call(collector, "start", collector.start, self._context, keep_on_error=False):
                self._report(collector)
                self._call(collector, "close", collector.close, keep_on_error=True)

    def _run_periodic(self, collectors: list[Collector]) -> None:
        schedules: list[_Schedule] = []
        for collector in collectors:
            if not self._call(collector, "start", self._check_and_start, collector, keep_on_error=False):
                continue
            now = time.monotonic()
            interval = float(collector.interval or 0.0)
            sample_interval = None if collector.sample_interval is None else float(collector.sample_interval)
            schedules.append(_Schedule(collector, interval, sample_interval, now, now + interval))
        while schedules and not self._stop_event.is_set():
            now = time.monotonic()
            for schedule in list(schedules):
                collector = schedule.collector
                if schedule.sample_interval is not None and now >= schedule.next_sample:
                    if not self._call(collector, "sample", collector.sample, keep_on_error=True):
                        schedules.remove(schedule)
                        continue
                    schedule.next_sample = _next_due(schedule.next_sample, schedule.sample_interval, now)
                if now >= schedule.next_report:
                    if not self._report(collector):
                        schedules.remove(schedule)
                        continue
                    schedule.next_report = _next_due(schedule.next_report, schedule.interval, now)
            wake = min(
                [s.next_report for s in schedules]
                + [s.next_sample for s in schedules if s.sample_interval is not None],
                default=now,
            )
            self._stop_event.wait(max(0.0, wake - time.monotonic()))
        for schedule in schedules:
            self._report(schedule.collector)
            self._call(schedule.collector, "close", schedule.collector.close, keep_on_error=True)

    def _check_and_start(self, collector: Collector) -> None:
        for attribute in ("interval", "sample_interval"):
            value = getattr(collector, attribute)
            if value is not None and not (isinstance(value, int | float) and value > 0):
                raise ValueError(f"{attribute} must be a number of seconds > 0 or None, got {value!r}")
        collector.start(self._context)

    def _report(self, collector: Collector) -> bool:
        """Collect once and send the result; False when the collector is to be dropped."""
        return self._call(collector, "collect", lambda: self._emit(collector, collector.collect()), keep_on_error=True)

    def _call(
        self, collector: Collector, stage: str, fn: Callable[..., object], *args: object, keep_on_error: bool
    ) -> bool:
        """Call one collector hook, isolating its failure; False when the collector is to be dropped."""
        name = collector.display_name
        try:
            fn(*args)
            return True
        except CollectorUnavailableError as exc:
            logger.log(exc.level, "Tracelet collector %r skipped: %s", name, exc)
            return False
        except Exception as exc:
            logger.debug("Tracelet collector %r failed in %s()", name, stage, exc_info=True)
            what = "is tried again at its next interval" if keep_on_error else "is skipped for this run"
            errors.warn_once(
                f"collector:{name}",
                f"Tracelet collector {name!r} failed in {stage}(): {type(exc).__name__}: {exc}. "
                f"It {what}; the other collectors and the run go on.",
            )
            return keep_on_error

    def _emit(self, collector: Collector, result: Collected | Mapping[str, float] | None) -> None:
        if result is None:
            return
        if isinstance(result, Mapping):
            result = Collected(metrics=dict(result))
        elif not isinstance(result, Collected):
            raise TypeError(
                f"collect() returned a {type(result).__name__}; return a Collected, a mapping of metric values, or None"
            )
        metrics: dict[str, float] = {}
        for key, value in result.metrics.items():
            number = to_metric_value(value)
            if number is None:
                errors.warn_once(
                    f"collector-value:{collector.display_name}:{key}",
                    f"Tracelet collector {collector.display_name!r} gave {key}={value!r}, which is "
                    "not a number; the value is left out.",
                )
                continue
            metrics[key] = number
        timestamp = result.timestamp if result.timestamp is not None else time.time()
        with self._lock:
            if self._closed:
                return
            if result.tags:
                self._sink.set_tags({str(k): str(v) for k, v in result.tags.items()})
            if result.params:
                self._sink.log_params(dict(result.params))
            if metrics:
                self._sink.log_metrics(metrics, step=result.step, timestamp=timestamp)
                if result.step is not None:
                    self._next_sample = max(self._next_sample, result.step + 1)
            for name, path in result.artifacts.items():
                self._sink.log_artifact(str(path), name=name)
