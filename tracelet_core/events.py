"""The plain data that flows from a run to the trackers.

These are what a backend receives: no SDK types, no tensors, only Python scalars and strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "SYSTEM_METRIC_PREFIX",
    "TERMINAL_STATUSES",
    "ArtifactRef",
    "Batch",
    "MediaItem",
    "MetricPoint",
    "RunInfo",
    "RunStatus",
    "is_system_metric",
]

RunStatus = Literal["FINISHED", "FAILED", "KILLED"]
TERMINAL_STATUSES: tuple[RunStatus, ...] = ("FINISHED", "FAILED", "KILLED")
MediaKind = Literal["image", "histogram", "text"]
# System metrics (collectors/system.py, gpu.py) carry their sample index (0, 1, 2...) as step, as
# MLflow's own system-metrics monitor does; trackers whose step axis is the trainer's (W&B,
# ClearML) plot them against wall-clock time instead.
SYSTEM_METRIC_PREFIX = "system/"


def is_system_metric(key: str) -> bool:
    """Whether ``key`` names a system metric, whose step is a sample index rather than a training step.

    Example:
        >>> is_system_metric("system/cpu_percent"), is_system_metric("train/loss")
        (True, False)
    """
    return key.startswith(SYSTEM_METRIC_PREFIX)


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One value of one metric.

    Attributes:
        key: the metric name as logged (backends sanitise it for their own rules).
        value: a float; NaN and ±inf are kept as such.
        step: the step it was logged at (Lightning's global step), or None if none was given.
        timestamp: seconds since the epoch, taken when the value was logged (not when delivered),
            so that re-delivering the same point is recognisable as the same point.
    """

    key: str
    value: float
    step: int | None
    timestamp: float


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """A file to upload: ``path`` on local disk, stored under ``name`` (``/``-separated) in the tracker.

    ``metadata`` carries extra facts a tracker can record (for checkpoints: score, aliases).
    """

    path: str
    name: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MediaItem:
    """An image, histogram or text logged against a key and step.

    Images are PNG files at ``path``; histograms carry ``data = {"bins": [...], "counts": [...]}``
    (``len(bins) == len(counts) + 1``) and, where known, ``data["values"]`` (a sample of the raw
    values); texts carry ``data = {"text": ...}``.
    """

    kind: MediaKind
    key: str
    step: int | None
    timestamp: float
    path: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Batch:
    """Consecutive metrics, params and tags, delivered to a backend in one call.

    Params and tags keep the last value given for a key; metrics keep every point, in order.
    """

    metrics: list[MetricPoint] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.metrics or self.params or self.tags)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a backend needs to open (or re-open) its native run.

    Attributes:
        run_id: Tracelet's id of the run (also the journal's name).
        experiment: experiment / project name.
        run_name: the run's display name, or None for the tracker's own naming.
        tags: the run's tags at start.
        start_time: seconds since the epoch.
        run_dir: the run's local directory (journal, delivery log, staged files).
        end_time: when the run ended, for a run copied after it ended (``tracelet migrate``); None
            for a live run, which ends when the backend is closed.
    """

    run_id: str
    experiment: str
    run_name: str | None
    tags: dict[str, str]
    start_time: float
    run_dir: str
    end_time: float | None = None
