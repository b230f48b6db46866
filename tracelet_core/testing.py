"""Test doubles for code that uses Tracelet, shipped with the library (like httpx's ``MockTransport``).

* :class:`InMemoryBackend` keeps what it receives in memory, for unit tests; use it with
  ``delivery="thread"`` so it lives in the test's own process.
* :class:`FailingBackend` raises on every call and :class:`HangingBackend` blocks on every write:
  to check that a tracker outage never reaches training.

Each is addressed by import path, e.g. ``backends=["tracelet_core.testing:InMemoryBackend"]``, or
by the short names ``memory``, ``failing`` and ``hanging`` after :func:`register_test_backends`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from tracelet_core.events import ArtifactRef, Batch, MediaItem, MetricPoint, RunInfo, RunStatus
from tracelet_core.trackers import register_backend
from tracelet_core.trackers.base import Backend, Capabilities

__all__ = [
    "FailingBackend",
    "HangingBackend",
    "InMemoryBackend",
    "RecordedRun",
    "register_test_backends",
]

MEMORY = "tracelet_core.testing:InMemoryBackend"
FAILING = "tracelet_core.testing:FailingBackend"
HANGING = "tracelet_core.testing:HangingBackend"


@dataclass
class RecordedRun:
    """Everything one :class:`InMemoryBackend` run received."""

    info: RunInfo
    metrics: list[MetricPoint] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[ArtifactRef] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    media: list[MediaItem] = field(default_factory=list)
    status: str = "RUNNING"
    opened: int = 0

    def history(self, key: str) -> list[tuple[int | None, float]]:
        """``[(step, value), ...]`` of one metric, in delivery order."""
        return [(p.step, p.value) for p in self.metrics if p.key == key]


class InMemoryBackend(Backend):
    """Stores runs in the class attribute ``runs`` (native id -> :class:`RecordedRun`).

    Example:
        >>> backend = InMemoryBackend()
        >>> run_id = backend.open(RunInfo("r2", "exp", None, {}, 0.0, "/tmp"), None)
        >>> backend.write(Batch(metrics=[MetricPoint("loss", 0.5, 1, 0.0)]))
        >>> InMemoryBackend.runs[run_id].history("loss")
        [(1, 0.5)]
    """

    name = "memory"
    capabilities = Capabilities(media=frozenset({"image", "histogram", "text"}), epoch_axis=False)
    runs: ClassVar[dict[str, RecordedRun]] = {}

    def open(self, run: RunInfo, native_id: str | None) -> str:
        self._id = native_id or f"memory-{run.run_id}"
        recorded = self.runs.setdefault(self._id, RecordedRun(run))
        recorded.status = "RUNNING"
        recorded.opened += 1
        recorded.tags.update(run.tags)
        return self._id

    def write(self, batch: Batch) -> None:
        run = self.runs[self._id]
        run.metrics.extend(batch.metrics)
        run.params.update(batch.params)
        run.tags.update(batch.tags)

    def log_artifact(self, artifact: ArtifactRef) -> None:
        recorded = self.runs[self._id]
        recorded.artifacts.append(artifact)
        recorded.files[artifact.name] = Path(artifact.path).read_bytes()  # a tracker keeps its own copy

    def log_media(self, item: MediaItem) -> None:
        self.runs[self._id].media.append(item)

    def close(self, status: RunStatus) -> None:
        self.runs[self._id].status = status

    def location(self) -> str:
        return "memory"


class FailingBackend(Backend):
    """A tracker that is down: every call raises ``ConnectionError``."""

    name = "failing"

    def open(self, run: RunInfo, native_id: str | None) -> str:
        raise ConnectionError("FailingBackend: the tracker is down")

    def write(self, batch: Batch) -> None:
        raise ConnectionError("FailingBackend: the tracker is down")

    def close(self, status: RunStatus) -> None:
        raise ConnectionError("FailingBackend: the tracker is down")


class HangingBackend(Backend):
    """A tracker that never answers: ``open`` works, every ``write`` blocks until ``release()``."""

    name = "hanging"
    _release: ClassVar[threading.Event] = threading.Event()

    def open(self, run: RunInfo, native_id: str | None) -> str:
        return f"hanging-{run.run_id}"

    def write(self, batch: Batch) -> None:
        self._release.wait()

    def close(self, status: RunStatus) -> None:
        self._release.wait()

    @classmethod
    def hold(cls) -> None:
        """Make calls block again (after :meth:`release`); call it before a test that needs the hang."""
        cls._release.clear()

    @classmethod
    def release(cls) -> None:
        """Let every blocked call return (and later ones pass)."""
        cls._release.set()


def register_test_backends() -> None:
    """Register the doubles under the names ``memory``, ``failing`` and ``hanging``."""
    for short, path in (("memory", MEMORY), ("failing", FAILING), ("hanging", HANGING)):
        register_backend(short, path)
