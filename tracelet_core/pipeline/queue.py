"""The hot path: an unbounded-in-practice deque the training thread appends to.

``EventQueue.put`` is a ``deque.append`` of one queue item: no I/O, no SDK, no conversion, no device
sync. Everything else — checking steps, timestamps and values, converting tensors and numpy scalars,
encoding images, serialising payloads, warning about bad values — happens on the
:class:`~tracelet_core.pipeline.writer.JournalWriter` thread.

A queue item is a tuple tagged with its :class:`QueueKind`, one type per kind (:data:`QueueItem`
is their union): mypy checks what ``Run`` puts and narrows what the writer takes by the tag. Tuples,
not ``NamedTuple`` records: a ``NamedTuple``'s constructor is a Python function, which made
``Run.log_metrics`` a third slower (about 150 ns on ~400 ns); a tuple display costs ~20 ns. The
``start`` event is journaled directly by the run, before delivery starts.
"""

from __future__ import annotations

import threading
from collections import deque
from enum import Enum
from pathlib import Path
from typing import Any, Final, Literal

from tracelet_core.errors import warn_once

__all__ = [
    "ARTIFACT",
    "CONFIG",
    "FINISH",
    "MEDIA",
    "METRICS",
    "PARAMS",
    "TAGS",
    "ArtifactItem",
    "ConfigItem",
    "EventQueue",
    "FinishItem",
    "MediaQueueItem",
    "MetricsItem",
    "ParamsItem",
    "QueueItem",
    "QueueKind",
    "TagsItem",
]


class QueueKind(Enum):
    """What a queue item asks the journal writer to journal."""

    METRICS = "metrics"
    PARAMS = "params"
    TAGS = "tags"
    ARTIFACT = "artifact"
    CONFIG = "config"
    MEDIA = "media"
    FINISH = "finish"


# The tags as module constants: looking a member up on an Enum class costs ~45 ns in Python 3.11,
# a tenth of a log call.
METRICS: Final = QueueKind.METRICS
PARAMS: Final = QueueKind.PARAMS
TAGS: Final = QueueKind.TAGS
ARTIFACT: Final = QueueKind.ARTIFACT
CONFIG: Final = QueueKind.CONFIG
MEDIA: Final = QueueKind.MEDIA
FINISH: Final = QueueKind.FINISH

MetricsItem = tuple[Literal[QueueKind.METRICS], dict[Any, Any], Any, Any]
"""``(METRICS, {key: raw value}, raw step, raw timestamp)``: checked and converted by the writer."""
ParamsItem = tuple[Literal[QueueKind.PARAMS], dict[str, Any], float]
"""``(PARAMS, {flattened key: value}, timestamp)``."""
TagsItem = tuple[Literal[QueueKind.TAGS], dict[str, str], float]
"""``(TAGS, {key: value}, timestamp)``."""
ArtifactItem = tuple[Literal[QueueKind.ARTIFACT], str, str, dict[str, Any], float, str | None]
"""``(ARTIFACT, name, staged path, metadata, timestamp, copy_from)``: ``copy_from`` is set when the file
could not be hard-linked into the run directory and must be copied there first."""
ConfigItem = tuple[Literal[QueueKind.CONFIG], dict[str, Any], Path, float]
"""``(CONFIG, merged hyperparameters, yaml path, timestamp)``: written as ``tracelet/config.yaml``."""
MediaQueueItem = tuple[Literal[QueueKind.MEDIA], str, str, Any, Any, Any]
"""``(MEDIA, media kind, key, object, raw step, raw timestamp)``: encoded by the writer."""
FinishItem = tuple[Literal[QueueKind.FINISH], str, float]
"""``(FINISH, status, timestamp)``."""
QueueItem = MetricsItem | ParamsItem | TagsItem | ArtifactItem | ConfigItem | MediaQueueItem | FinishItem


class EventQueue:
    """A thread-safe FIFO whose ``put`` never does I/O.

    When more than ``max_items`` items wait (the writer thread cannot keep up with the training
    thread), ``put`` blocks until the writer catches up rather than dropping points, and says so once.
    A journal that cannot be written (a full disk) does not back the queue up: the writer keeps
    draining it (see :mod:`tracelet_core.pipeline.writer`).

    Example:
        >>> q = EventQueue()
        >>> q.put((METRICS, {"loss": 0.1}, 1, 0.0))
        >>> [(item[0].value, *item[1:]) for item in q.drain()]
        [('metrics', {'loss': 0.1}, 1, 0.0)]
    """

    def __init__(self, max_items: int = 1_000_000) -> None:
        self._items: deque[QueueItem] = deque()
        self._max_items = max_items
        self._drained = threading.Condition()
        self.wakeup = threading.Event()

    def put(self, item: QueueItem) -> None:
        """Append one item (O(1))."""
        self._items.append(item)
        if len(self._items) > self._max_items:
            self._wait_for_room()

    def drain(self) -> list[QueueItem]:
        """Take every waiting item, in order."""
        items = self._items
        taken = [items.popleft() for _ in range(len(items))]
        if taken:
            with self._drained:
                self._drained.notify_all()
        return taken

    def __len__(self) -> int:
        return len(self._items)

    def _wait_for_room(self) -> None:
        warn_once(
            "queue-full",
            f"Tracelet's journal writer is falling behind ({len(self._items)} events waiting); training waits "
            "for it rather than dropping data.",
        )
        self.wakeup.set()
        with self._drained:
            self._drained.wait_for(lambda: len(self._items) <= self._max_items // 2, timeout=60.0)
