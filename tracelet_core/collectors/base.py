"""What a collector is: the :class:`Collector` base, the data it returns, and the sink it returns it to.

A collector reads one source (psutil, NVML, git, the interpreter, or anything a user writes) and
returns plain data (:class:`Collected`); the run's :class:`~tracelet_core.collectors.CollectorSet`
hands that data to the run through the :class:`CollectorSink` protocol, and the run sends it on to
every backend. How and when collectors are called is described in :mod:`tracelet_core.collectors`.
"""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tracelet_core import errors

if TYPE_CHECKING:
    from tracelet_core.settings import TraceletSettings

__all__ = [
    "Collected",
    "Collector",
    "CollectorContext",
    "CollectorSink",
    "CollectorUnavailableError",
    "MeanWindow",
    "RecordingSink",
]


FILES_DIR = "collected"


class CollectorSink(Protocol):
    """Where collected data goes: the run. Every method is a cheap, thread-safe enqueue."""

    @property
    def run_dir(self) -> Path:
        """A directory collectors may write files into before logging them as artifacts."""
        ...

    def log_metrics(
        self, metrics: dict[str, float], step: int | None = None, timestamp: float | None = None
    ) -> None: ...

    def set_tags(self, tags: dict[str, str]) -> None: ...

    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_artifact(self, path: str, name: str | None = None) -> None: ...


@dataclass
class Collected:
    """What one call to :meth:`Collector.collect` found.

    Attributes:
        metrics: metric name to value.
        tags: tag name to string value.
        params: parameter name to value.
        artifacts: name in the tracker (``"tracelet/environment.json"``) to a local file.
        timestamp: when the values were taken (seconds since the epoch); None means "now".
        step: the metrics' step: None for none; the system and GPU collectors give their sample index
            (0, 1, 2... over the run), as MLflow's own system-metrics monitor does.

    Example:
        >>> Collected(tags={"team": "vision"}).tags
        {'team': 'vision'}
    """

    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    timestamp: float | None = None
    step: int | None = None


@dataclass(frozen=True)
class CollectorContext:
    """What a collector is told when the run starts.

    Attributes:
        run_dir: the run's directory.
        settings: the run's settings (None when a collector runs outside a run).
        first_sample: the sample index a sampling collector starts counting from (after the samples a
            resumed run, or the collectors it restarted, already recorded).
    """

    run_dir: Path
    settings: TraceletSettings | None = None
    first_sample: int = 0

    def path_for(self, filename: str) -> Path:
        """A path under ``run_dir/collected/`` for a file to log as an artifact (the folder exists).

        Example:
            >>> import tempfile
            >>> CollectorContext(Path(tempfile.mkdtemp())).path_for("x.txt").parent.name
            'collected'
        """
        folder = self.run_dir / FILES_DIR
        folder.mkdir(parents=True, exist_ok=True)
        return folder / filename


class CollectorUnavailableError(errors.TraceletError):
    """Raised by a collector whose source does not exist here (no GPU, not a git repository).

    The collector is skipped for the run with one log line at ``level``, and no warning.
    """

    def __init__(self, reason: str, level: int = logging.DEBUG) -> None:
        super().__init__(reason)
        self.level = level


class Collector(abc.ABC):
    """Base class of every collector: one-shot (``interval = None``) or periodic.

    Subclasses implement :meth:`collect`; :meth:`start`, :meth:`sample` and :meth:`close` are
    optional. All four are called on a collector thread, never on the training thread, and never
    concurrently for one collector.

    Attributes:
        name: shown in warnings; the class name when empty.
        interval: seconds between two reports; None runs the collector once, at the start.
        sample_interval: seconds between two calls to :meth:`sample` (periodic collectors that
            aggregate several readings into one report); None never calls it.

    Example:
        >>> class Answer(Collector):
        ...     interval = 5.0
        ...     def collect(self):
        ...         return {"custom/answer": 42.0}
        >>> Answer().collect(), Answer().display_name
        ({'custom/answer': 42.0}, 'Answer')
    """

    name: str = ""
    interval: float | None = None
    sample_interval: float | None = None

    @property
    def display_name(self) -> str:
        """``name``, or the class name when no name was set."""
        return self.name or type(self).__name__

    def start(self, context: CollectorContext) -> None:  # noqa: B027 - optional hook, empty by design
        """Prepare: open handles, prime counters. Raise :class:`CollectorUnavailableError` to skip."""

    def sample(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Take one reading between two reports (called every ``sample_interval`` seconds)."""

    @abc.abstractmethod
    def collect(self) -> Collected | Mapping[str, float] | None:
        """Return what to log now: a :class:`Collected`, a mapping of metrics, or None for nothing."""

    def close(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Release what :meth:`start` opened; called once when the run stops."""


class MeanWindow:
    """Means of the readings taken since the last report.

    Example:
        >>> w = MeanWindow()
        >>> w.add({"cpu": 10.0}); w.add({"cpu": 30.0, "gpu": 5.0})
        >>> len(w), w.take(), len(w)
        (2, {'cpu': 20.0, 'gpu': 5.0}, 0)
    """

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._readings = 0

    def add(self, values: Mapping[str, float]) -> None:
        """Add one reading (a key missing from a reading does not count against its mean)."""
        self._readings += 1
        for key, value in values.items():
            self._sums[key] = self._sums.get(key, 0.0) + value
            self._counts[key] = self._counts.get(key, 0) + 1

    def take(self) -> dict[str, float]:
        """The mean of each key since the last ``take``; starts a new window."""
        means = {key: total / self._counts[key] for key, total in self._sums.items()}
        self._sums, self._counts, self._readings = {}, {}, 0
        return means

    def __len__(self) -> int:
        return self._readings


class RecordingSink:
    """A :class:`CollectorSink` that keeps everything in memory, for testing collectors.

    Example:
        >>> import tempfile
        >>> sink = RecordingSink(tempfile.mkdtemp())
        >>> sink.log_metrics({"m": 1.0}, timestamp=5.0); sink.set_tags({"a": "b"})
        >>> sink.metrics, sink.tags
        ([({'m': 1.0}, None, 5.0)], {'a': 'b'})
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.metrics: list[tuple[dict[str, float], int | None, float | None]] = []
        self.tags: dict[str, str] = {}
        self.params: dict[str, Any] = {}
        self.artifacts: dict[str, Path] = {}
        self._lock = threading.Lock()

    def log_metrics(self, metrics: dict[str, float], step: int | None = None, timestamp: float | None = None) -> None:
        with self._lock:
            self.metrics.append((dict(metrics), step, timestamp))

    def set_tags(self, tags: dict[str, str]) -> None:
        with self._lock:
            self.tags.update(tags)

    def log_params(self, params: dict[str, Any]) -> None:
        with self._lock:
            self.params.update(params)

    def log_artifact(self, path: str, name: str | None = None) -> None:
        with self._lock:
            self.artifacts[name or Path(path).name] = Path(path)

    def metric_keys(self) -> set[str]:
        """Every metric name logged so far."""
        with self._lock:
            return {key for metrics, _, _ in self.metrics for key in metrics}
