"""The hot path: an unbounded-in-practice deque the training thread appends to.

``EventQueue.put`` is a ``deque.append`` of a tuple: no I/O, no SDK, no conversion, no device sync.
Everything else — checking steps, timestamps and values, converting tensors and numpy scalars,
encoding images, serialising payloads, warning about bad values — happens on the
:class:`~tracelet_core.pipeline.writer.JournalWriter` thread.

Queue items are tuples whose first element is the kind:

* ``("metrics", {key: value}, step, ts)``
* ``("params", {flat_key: str}, ts)`` and ``("tags", {key: str}, ts)``
* ``("artifact", name, staged_path, metadata, ts, copy_from)``: ``copy_from`` is set when the file
  could not be hard-linked into the run directory and must be copied there first
* ``("config", merged_hyperparameters, yaml_path, ts)``: written as ``tracelet/config.yaml``
* ``("media", kind, key, obj, step, ts)``
* ``("finish", status, ts)`` (the ``start`` event is journaled directly by the run, before delivery starts)
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from tracelet_core.errors import warn_once

__all__ = ["EventQueue", "QueueItem"]

QueueItem = tuple[Any, ...]


class EventQueue:
    """A thread-safe FIFO whose ``put`` never does I/O.

    When more than ``max_items`` items wait (the writer thread cannot keep up with the training
    thread), ``put`` blocks until the writer catches up rather than dropping points, and says so once.
    A journal that cannot be written (a full disk) does not back the queue up: the writer keeps
    draining it (see :mod:`tracelet_core.pipeline.writer`).

    Example:
        >>> q = EventQueue()
        >>> q.put(("metrics", {"loss": 0.1}, 1, 0.0))
        >>> q.drain()
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
