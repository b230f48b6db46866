"""The hot path: an unbounded-in-practice deque the training thread appends to, and the thread that
turns its items into journal rows once per flush interval.

``EventQueue.put`` is a ``deque.append`` of a tuple: no I/O, no SDK, no conversion, no device sync.
Everything else — converting tensors and numpy scalars to floats, encoding images, serialising
payloads, warning about bad values — happens on the :class:`JournalWriter` thread.

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

import json
import logging
import shutil
import threading
from collections import deque
from pathlib import Path
from typing import Any

from tracelet_core.errors import warn_once
from tracelet_core.normalize import to_metric_value
from tracelet_core.pipeline.journal import EventRow, Journal, metric_columns

__all__ = ["EventQueue", "JournalWriter"]

log = logging.getLogger("tracelet")
QueueItem = tuple[Any, ...]
_NOTICE_EVERY = 5  # flushes between two looks at the delivery process's notices


class EventQueue:
    """A thread-safe FIFO whose ``put`` never does I/O.

    When more than ``max_items`` items wait (the journal cannot keep up, e.g. a full disk),
    ``put`` blocks until the writer catches up rather than dropping points, and says so once.

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

    def requeue(self, items: list[QueueItem]) -> None:
        """Put back items that could not be written, ahead of newer ones."""
        self._items.extendleft(reversed(items))

    def __len__(self) -> int:
        return len(self._items)

    def _wait_for_room(self) -> None:
        warn_once(
            "queue-full",
            f"Tracelet's journal is falling behind ({len(self._items)} events waiting); training waits "
            "for it rather than dropping data. Check the disk holding TRACELET_JOURNAL_DIR.",
        )
        self.wakeup.set()
        with self._drained:
            self._drained.wait_for(lambda: len(self._items) <= self._max_items // 2, timeout=60.0)


class JournalWriter(threading.Thread):
    """Moves queued events into the journal, one transaction per flush interval.

    Args:
        queue: the run's queue.
        journal_path: the journal file (the writer opens its own connection).
        media_dir: where encoded images are written.
        flush_interval: seconds between two transactions.
    """

    def __init__(self, queue: EventQueue, journal_path: Path, media_dir: Path, flush_interval: float) -> None:
        super().__init__(name="tracelet-journal-writer", daemon=True)
        self._queue = queue
        self._journal_path = journal_path
        self._media_dir = media_dir
        self._flush_interval = flush_interval
        self._stopping = threading.Event()
        self._journal: Journal | None = None
        self._lock = threading.Lock()
        self.last_seq = 0
        self._last_notice = 0
        self._flushes = 0

    def run(self) -> None:
        while not self._stopping.is_set():
            self._queue.wakeup.wait(self._flush_interval)
            self._queue.wakeup.clear()
            self.flush()
            self._flushes += 1
            if self._flushes % _NOTICE_EVERY == 0:
                self.relay_notices()

    def relay_notices(self) -> None:
        """Show, as warnings here, what the delivery process noted (it has no terminal of its own)."""
        with self._lock:
            try:
                journal = self._journal or Journal(self._journal_path)
                notices = journal.notices(self._last_notice)
                if journal is not self._journal:
                    journal.close()
            except Exception:  # a locked or missing journal: try again later
                return
        for notice_id, message in notices:
            self._last_notice = notice_id
            warn_once(f"notice:{message}", message)

    def stop(self, timeout: float = 10.0) -> int:
        """Stop the thread after a final flush; return the last sequence number written."""
        self._stopping.set()
        self._queue.wakeup.set()
        if self.is_alive():
            self.join(timeout)
        self.flush()
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
        return self.last_seq

    def flush(self) -> None:
        """Write everything queued so far (called by the thread, and once more by ``stop``)."""
        with self._lock:
            items = self._queue.drain()
            if not items:
                return
            rows: list[EventRow] = []
            for item in items:
                try:
                    rows.extend(self._rows(item))
                except Exception as exc:  # one bad item must not lose the others
                    warn_once(
                        f"bad-item:{item[0]}:{type(exc).__name__}",
                        f"Tracelet skipped a {item[0]} event: {exc}",
                    )
            try:
                if self._journal is None:
                    self._journal = Journal(self._journal_path)
                if rows:
                    self.last_seq = self._journal.append(rows)
            except Exception as exc:
                # Keep the events and try again next interval; losing them is the one thing we must not do.
                warn_once(
                    f"journal-write:{type(exc).__name__}",
                    f"Tracelet cannot write its journal ({exc}); retrying.",
                )
                self._queue.requeue(items)

    def _rows(self, item: QueueItem) -> list[EventRow]:
        kind = item[0]
        if kind == "metrics":
            _, metrics, step, ts = item
            rows: list[EventRow] = []
            for key, raw in metrics.items():
                value = to_metric_value(raw)
                if value is None:
                    warn_once(
                        f"metric-value:{key}:{type(raw).__name__}",
                        f"Metric {key!r} got a {type(raw).__name__} value ({raw!r:.40}), not a number; "
                        "Tracelet skips such values for this key.",
                    )
                    continue
                num, text = metric_columns(value)
                rows.append(("metric", str(key), num, text, step, ts))
            return rows
        if kind in ("params", "tags"):
            _, values, ts = item
            return [(kind[:-1], str(key), None, str(value), None, ts) for key, value in values.items()]
        if kind == "artifact":
            _, name, path, metadata, ts, copy_from = item
            if copy_from is not None:
                shutil.copy2(copy_from, path)  # a file gone meanwhile: warned once by flush(), skipped
            return [
                (
                    "artifact",
                    name,
                    None,
                    json.dumps({"path": path, "metadata": metadata}, default=str),
                    None,
                    ts,
                )
            ]
        if kind == "config":
            import yaml

            _, config, path, ts = item
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
            payload = json.dumps({"path": str(path), "metadata": {}})
            return [("artifact", "tracelet/config.yaml", None, payload, None, ts)]
        if kind == "media":
            from tracelet_core.media import encode_media

            _, media_kind, key, obj, step, ts = item
            encoded = encode_media(media_kind, key, obj, step, self._media_dir)
            return [("media", key, None, json.dumps(encoded), step, ts)]
        if kind == "finish":
            _, status, ts = item
            return [("finish", None, None, status, None, ts)]
        raise ValueError(f"unknown queue item kind {kind!r}")
