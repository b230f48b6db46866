"""The journal writer: the thread that turns queued events into journal rows, once per flush interval.

Everything the training thread hands over raw is converted and checked here, off the training
thread (a tensor on a device is read here, never there), by the one set of rules in
:mod:`tracelet_core.normalize`: a step is an integer in [0, 2**63), a timestamp lies between 1970
and 2100, a value is a real number (NaN and ±inf kept). Anything else is dropped alone, with one
warning per key naming the key and the value, and counted in the run's report.

A write that fails is never retried for ever and never loses the batch silently:

* a row SQLite cannot store (which the checks above should make impossible) is found by splitting
  the batch and dropped alone, with a warning;
* a journal that cannot be written (a full disk, an unreadable file) is reported at once; the rows
  wait in memory, up to ``max_unwritten`` of them, and are written as soon as the journal takes
  them again; what did not fit is counted as lost and reported when the run finishes;
* a journal deleted under the run (its directory removed) is recreated at once, with the run's
  metadata, each tracker's run id and a new start event, so the run goes on being recorded and
  delivered to the same tracker runs; what only the deleted journal held is counted as lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tracelet_core.errors import JournalError, warn_once
from tracelet_core.inputs import preview, to_metric_value, to_step, to_timestamp
from tracelet_core.pipeline.contract import ArtifactPayload, EventKind, EventRow, metric_columns
from tracelet_core.pipeline.files import file_identity, make_private_dir
from tracelet_core.pipeline.journal import Journal
from tracelet_core.pipeline.queue import EventQueue, QueueItem, QueueKind

__all__ = ["MAX_UNWRITTEN", "JournalWriter"]

log = logging.getLogger("tracelet")
MAX_UNWRITTEN = 200_000  # rows kept in memory while the journal cannot be written (~50 MB)
_NOTICE_EVERY = 5  # flushes between two looks at the delivery process's notices
_FINAL_ATTEMPTS = 10  # tries of the last write at finish, one flush interval apart (at least 0.1 s)
# Errors about a row's content (SQLite cannot bind it): splitting the batch finds the row.
_DATA_ERRORS = (sqlite3.InterfaceError, sqlite3.IntegrityError, sqlite3.ProgrammingError, OverflowError, TypeError)
# Errors about the journal itself: the rows wait for it.
_STORAGE_ERRORS = (sqlite3.Error, OSError, JournalError)
# The kinds of the rows made per value, as plain text (see EventRow) in constants (an Enum member
# lookup costs ~45 ns).
_METRIC, _PARAM, _TAG = EventKind.METRIC.value, EventKind.PARAM.value, EventKind.TAG.value


class JournalWriter(threading.Thread):
    """Moves queued events into the journal, one transaction per flush interval.

    Args:
        queue: the run's queue.
        journal_path: the journal file (the writer opens its own connection at once).
        media_dir: where encoded images are written.
        flush_interval: seconds between two transactions.
        max_unwritten: rows kept in memory at most while the journal cannot be written.

    Attributes:
        last_seq: the sequence number of the last row written.
        dropped: values dropped as invalid (bad step, timestamp or value).
        lost: events logged that could not be kept (journal unwritable for too long, or deleted).
    """

    def __init__(
        self,
        queue: EventQueue,
        journal_path: Path,
        media_dir: Path,
        flush_interval: float,
        max_unwritten: int = MAX_UNWRITTEN,
    ) -> None:
        super().__init__(name="tracelet-journal-writer", daemon=True)
        self._queue = queue
        self._journal_path = journal_path
        self._media_dir = media_dir
        self._flush_interval = flush_interval
        self._max_unwritten = max_unwritten
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._journal: Journal | None = Journal(journal_path)
        self._identity = file_identity(journal_path)
        self._unwritten: list[EventRow] = []
        self._failing: str | None = None  # why the journal cannot be written right now
        self.last_seq = 0
        self.dropped = 0
        self.lost = 0
        self._last_notice = 0
        self._flushes = 0

    @property
    def failing(self) -> str | None:
        """Why the journal could not be written at the last attempt (None when it could)."""
        return self._failing

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
        """Stop the thread after a final write; return the last sequence number written.

        Rows the journal still refuses after a few more tries are counted in :attr:`lost`; this never raises.
        """
        self._stopping.set()
        self._queue.wakeup.set()
        if self.is_alive():
            self.join(timeout)
        self.flush()
        for _ in range(_FINAL_ATTEMPTS):
            if not self._unwritten:
                break
            self._stopping.wait(max(0.1, self._flush_interval))
            self.flush()
        with self._lock:
            if self._unwritten:
                self.lost += len(self._unwritten)
                log.warning(
                    "tracelet: %d events could not be written to %s (%s)",
                    len(self._unwritten),
                    self._journal_path,
                    self._failing,
                )
                self._unwritten = []
            self._close()
        return self.last_seq

    def flush(self) -> None:
        """Write everything queued so far (called by the thread, and once more by ``stop``)."""
        with self._lock:
            rows = self._unwritten
            self._unwritten = []
            for item in self._queue.drain():
                try:
                    rows.extend(self._rows(item))
                except Exception as exc:  # one bad item must not lose the others
                    self.dropped += 1
                    warn_once(
                        f"bad-item:{item[0].value}:{type(exc).__name__}",
                        f"Tracelet skipped a {item[0].value} event: {exc}",
                    )
            if rows:
                self._write(rows)

    # -- writing --------------------------------------------------------------------------------

    def _write(self, rows: list[EventRow]) -> None:
        try:
            journal = self._current_journal()
            self._append(journal, rows)
        except _STORAGE_ERRORS as exc:
            self._close()
            self._keep(rows, exc)
            return
        if self._failing is not None:
            warn_once(
                f"journal-writable:{self._journal_path}:{self._failing}",
                f"Tracelet's journal {self._journal_path} is writable again; the events kept in memory are in it.",
            )
            self._failing = None

    def _append(self, journal: Journal, rows: list[EventRow]) -> None:
        """Append ``rows``; a row SQLite cannot bind is found by halving and dropped alone."""
        try:
            self.last_seq = journal.append(rows) or self.last_seq
        except _DATA_ERRORS as exc:
            if len(rows) == 1:
                self.dropped += 1
                warn_once(
                    f"unstorable:{rows[0][1]}",
                    f"Tracelet could not store a {rows[0][0]} event for {rows[0][1]!r} ({exc}); it is dropped.",
                )
                return
            middle = len(rows) // 2
            self._append(journal, rows[:middle])
            self._append(journal, rows[middle:])

    def _keep(self, rows: list[EventRow], exc: BaseException) -> None:
        """Hold rows the journal refused, up to ``max_unwritten``; count the rest as lost."""
        self._unwritten = rows[: self._max_unwritten]
        self.lost += len(rows) - len(self._unwritten)
        reason = f"{type(exc).__name__}: {exc}"
        if self._failing is None:
            self._failing = reason
            warn_once(
                f"journal-write:{self._journal_path}:{reason}",
                f"Tracelet cannot write its journal {self._journal_path} ({reason}). Training goes on; up to "
                f"{self._max_unwritten:,} events wait in memory and are written once it can (free space on its "
                "disk); anything beyond that is counted and reported when the run ends.",
            )

    def _current_journal(self) -> Journal:
        """The open journal; recreated at once if the file was deleted or replaced under the run."""
        identity = file_identity(self._journal_path)
        if self._journal is not None and identity == self._identity:
            return self._journal
        if identity is None or (self._journal is not None and identity != self._identity):
            self._recreate()
        elif self._journal is None:
            self._journal = Journal(self._journal_path)
        assert self._journal is not None
        return self._journal

    def _recreate(self) -> None:
        """Build a new journal at the same path from what the old connection still reads."""
        old = self._journal
        if old is None:
            raise JournalError(f"the journal {self._journal_path} is gone and no open copy remains to recreate it")
        meta = old.meta()
        deliveries = old.deliveries()
        start = old.last_event(EventKind.START)
        undelivered = old.count(after=min((d.acked_seq for d in deliveries.values()), default=0))
        make_private_dir(self._journal_path.parent)
        new = Journal(self._journal_path, create=True)
        new.set_meta(**meta.changes())
        new.register_backends(deliveries)
        for name, state in deliveries.items():
            if state.native_id:
                new.update_delivery(name, native_id=state.native_id, location=state.location)
        if start is not None:
            self.last_seq = new.append([(EventKind.START, None, None, start.text, None, start.ts)])
        old.close()
        self._journal, self._identity = new, file_identity(self._journal_path)
        self.lost += undelivered
        warn_once(
            f"journal-recreated:{self._journal_path}",
            f"Tracelet's journal {self._journal_path} was deleted while the run was recording; a new one goes on "
            f"from here, delivered to the same tracker runs. {undelivered} events held only by the deleted journal "
            "are lost.",
        )

    def _close(self) -> None:
        if self._journal is not None:
            with contextlib.suppress(sqlite3.Error):
                self._journal.close()
            self._journal = None

    # -- converting -----------------------------------------------------------------------------

    def _rows(self, item: QueueItem) -> list[EventRow]:
        match item:
            case (QueueKind.METRICS, metrics, step, ts):
                return list(self._metric_rows(metrics, step, ts))
            case (QueueKind.PARAMS, values, ts):
                return [(_PARAM, str(key), None, str(value), None, ts) for key, value in values.items()]
            case (QueueKind.TAGS, values, ts):
                return [(_TAG, str(key), None, str(value), None, ts) for key, value in values.items()]
            case (QueueKind.ARTIFACT, name, path, metadata, ts, copy_from):
                if copy_from is not None:
                    shutil.copy2(copy_from, path)  # a file gone meanwhile: warned once by flush(), skipped
                return [(EventKind.ARTIFACT, name, None, ArtifactPayload(path, metadata).to_json(), None, ts)]
            case (QueueKind.CONFIG, config, path, ts):
                import yaml

                make_private_dir(path.parent)
                path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
                payload = ArtifactPayload(str(path)).to_json()
                return [(EventKind.ARTIFACT, "tracelet/config.yaml", None, payload, None, ts)]
            case (QueueKind.MEDIA, media_kind, key, obj, raw_step, raw_ts):
                from tracelet_core.media import encode_media

                step, ts = self._checked([str(key)], raw_step, raw_ts)
                if ts is None:
                    return []
                encoded = encode_media(media_kind, key, obj, step, self._media_dir)
                return [(EventKind.MEDIA, key, None, json.dumps(encoded), step, ts)]
            case (QueueKind.FINISH, status, ts):
                return [(EventKind.FINISH, None, None, status, None, ts)]
        raise ValueError(f"unknown queue item {item[0]!r}")

    def _metric_rows(self, metrics: dict[Any, Any], raw_step: Any, raw_ts: Any) -> Iterator[EventRow]:
        keys = [raw_key if type(raw_key) is str else str(raw_key) for raw_key in metrics]
        step, ts = self._checked(keys, raw_step, raw_ts)
        if ts is None:
            return
        for key, raw in zip(keys, metrics.values(), strict=True):
            value = to_metric_value(raw)
            if value is None:
                self._drop(
                    f"metric-value:{key}:{type(raw).__name__}",
                    f"Metric {key!r} got a {type(raw).__name__} value ({preview(raw)}), not a number; "
                    "Tracelet drops such values for this key.",
                )
                continue
            if math.isinf(value) and isinstance(raw, int | str) and not isinstance(raw, bool):
                warn_once(
                    f"metric-overflow:{key}",
                    f"Metric {key!r} got {preview(raw)}, beyond a float's range; it is recorded as {value}.",
                )
            num, text = metric_columns(value)
            yield (_METRIC, key, num, text, step, ts)

    def _checked(self, keys: list[str], raw_step: Any, raw_ts: Any) -> tuple[int | None, float | None]:
        """The step and timestamp of values logged for ``keys`` (ts None: they are dropped, one warning per key)."""
        what = "step"
        try:
            step = to_step(raw_step)
            what = "timestamp"
            return step, to_timestamp(raw_ts)
        except ValueError as exc:
            for key in keys:
                self._drop(f"{what}:{key}", f"A value logged for {key!r} was dropped: {exc}")
            return None, None

    def _drop(self, key: str, message: str, count: int = 1) -> None:
        self.dropped += count
        warn_once(key, message)
