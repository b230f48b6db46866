"""The run's journal: one SQLite file that is the source of truth for everything a run logged.

The training process appends events (one transaction per flush interval); the delivery process
reads them in order and writes back, per backend, the last sequence number the tracker accepted.
SQLite in WAL mode lets the two do this concurrently; a killed trainer loses at most the events
of one flush interval, and a killed delivery process resumes from its acknowledgements.

Each thread opens its own :class:`Journal`: SQLite connections are not shared between threads.

A journal is private to its user (see :mod:`.files`). Events a tracker can never take are set aside
per backend as *rejected* (a dead letter, with the reason), so one bad event never holds back the
ones behind it. What each table holds is typed in :mod:`.contract`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tracelet_core.errors import JournalError
from tracelet_core.pipeline.contract import (
    BackendDelivery,
    DeliveryState,
    EventKind,
    EventRow,
    JournalEvent,
    RejectedEvent,
    RunMeta,
    encode_meta,
    event_kind,
)
from tracelet_core.pipeline.files import JOURNAL_FILENAME, PRIVATE_FILE, file_identity, iter_journals, make_private_dir
from tracelet_core.pipeline.schema import REJECTED_SCHEMA, REQUIRED_TABLES, SCHEMA, SCHEMA_VERSION

# Besides Journal, names first defined here and still importable from here.
__all__ = [
    "JOURNAL_FILENAME",
    "DeliveryState",
    "EventRow",
    "Journal",
    "JournalEvent",
    "RejectedEvent",
    "file_identity",
    "iter_journals",
    "make_private_dir",
]

_EVENT_COLUMNS = "seq, kind, key, num, text, step, ts"

_UNCHANGED: Any = object()  # a delivery column update_delivery leaves as it is


def _events(rows: list[tuple[Any, ...]]) -> list[JournalEvent]:
    return [JournalEvent(seq, event_kind(kind), *rest) for seq, kind, *rest in rows]


def _text(raw: bytes) -> str:
    """Text columns are decoded leniently: a byte that is not UTF-8 must not make a whole journal unreadable."""
    return raw.decode("utf-8", errors="replace")


class Journal:
    """A connection to one run's journal file.

    Args:
        path: the journal file.
        create: create the file and schema if missing (only the run's owner does this).

    Raises:
        JournalError: the file does not exist (and ``create`` is False), or is not a Tracelet journal
            (not SQLite, damaged, or without a journal's tables).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "journal.sqlite"
        >>> j = Journal(path, create=True)
        >>> from tracelet_core.pipeline.contract import EventKind
        >>> j.append([(EventKind.METRIC, "loss", 0.5, None, 1, 0.0)])
        1
        >>> [e.value for e in j.read(after=0)]
        [0.5]
        >>> j.close()
    """

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if create and not self.path.exists():
            # SQLite creates its -wal and -shm files with the database file's permissions.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE))
        try:
            size = self.path.stat().st_size
        except OSError:
            raise JournalError(f"No Tracelet journal at {self.path}") from None
        if size == 0 and not create:
            # Not connected to: SQLite would turn an empty file (a run being created) into a database.
            raise JournalError(f"{self.path} is not a Tracelet journal: an empty file")
        # mode=rw: a reader never creates the file (it may have been deleted since the check above).
        target = self.path.resolve().as_uri() + ("?mode=rwc" if create else "?mode=rw")
        try:
            self._db = sqlite3.connect(target, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise JournalError(f"Cannot open the Tracelet journal {self.path}: {exc}") from exc
        self._db.text_factory = _text
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against a killed process (what we guard against); FULL only adds
            # power-loss durability at a large cost per transaction.
            self._db.execute("PRAGMA synchronous=NORMAL")
            if create:
                self._db.executescript(SCHEMA + REJECTED_SCHEMA)
                version = encode_meta(schema_version=SCHEMA_VERSION)
                self._db.executemany("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", version)
            else:
                self._check_schema()
        except (sqlite3.DatabaseError, JournalError) as exc:
            self._db.close()
            if isinstance(exc, JournalError):
                raise
            raise JournalError(f"Cannot read the Tracelet journal {self.path}: {exc}") from exc

    def _check_schema(self) -> None:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [name for name in REQUIRED_TABLES if name not in tables]
        if missing:
            what = "an empty file" if not tables else f"a SQLite file without the table(s) {', '.join(missing)}"
            raise JournalError(f"{self.path} is not a Tracelet journal: {what}")
        self._has_rejected = "rejected" in tables

    _has_rejected = True

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- events ---------------------------------------------------------------------------------

    def append(self, rows: Iterable[EventRow]) -> int:
        """Append rows in one transaction and return the last sequence number written (0 if none)."""
        with self._transaction() as db:
            db.executemany("INSERT INTO events(kind, key, num, text, step, ts) VALUES (?,?,?,?,?,?)", rows)
            row = db.execute("SELECT MAX(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def read(self, after: int, limit: int = 10_000, *, skip_metrics: bool = False) -> list[JournalEvent]:
        """Events with ``seq > after``, in order, at most ``limit`` of them (metrics left out if asked)."""
        cursor = self._db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE seq > ? AND (? = 0 OR kind != ?) ORDER BY seq LIMIT ?",
            (after, int(skip_metrics), EventKind.METRIC, limit),
        )
        return _events(cursor.fetchall())

    def metric_history(self, key: str) -> list[JournalEvent]:
        """Every point of one metric, in the order it was logged."""
        cursor = self._db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE kind = ? AND key = ? ORDER BY seq", (EventKind.METRIC, key)
        )
        return _events(cursor.fetchall())

    def last_seq(self) -> int:
        """The sequence number of the last event (0 for an empty journal)."""
        return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])

    def count(self, kind: EventKind | None = None, after: int = 0) -> int:
        """How many events (of ``kind``, if given) come after ``after``."""
        query = "SELECT COUNT(*) FROM events WHERE seq > ? AND (? IS NULL OR kind = ?)"
        return int(self._db.execute(query, (after, kind, kind)).fetchone()[0])

    def last_event(self, kind: EventKind, before: int | None = None) -> JournalEvent | None:
        """The most recent event of ``kind`` (e.g. the last ``finish``), or None.

        With ``before``, only events with a smaller sequence number are considered.
        """
        rows = self._db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE kind = ? AND seq < ? ORDER BY seq DESC LIMIT 1",
            (kind, before if before is not None else 2**62),
        ).fetchall()
        return next(iter(_events(rows)), None)

    def session_open(self) -> bool:
        """Whether the last session started has not journaled its end (its trainer runs, or died)."""
        start, finish = self.last_event(EventKind.START), self.last_event(EventKind.FINISH)
        return start is not None and (finish is None or finish.seq < start.seq)

    # -- metadata -------------------------------------------------------------------------------

    def set_meta(self, **changes: Any) -> None:
        """Store run metadata: fields of :class:`~.contract.RunMeta` (JSON-serialisable values).

        Raises:
            ValueError: a name is not a field of :class:`~.contract.RunMeta`.
        """
        rows = encode_meta(**changes)
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                rows,
            )

    def meta(self) -> RunMeta:
        """The run's metadata."""
        return RunMeta.from_rows(self._db.execute("SELECT key, value FROM meta").fetchall())

    # -- deliveries -----------------------------------------------------------------------------

    def register_backends(self, names: Iterable[str]) -> None:
        """Make sure every backend has a delivery row (a backend added on resume starts from 0)."""
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO deliveries(backend, updated) VALUES (?, ?)",
                [(name, time.time()) for name in names],
            )

    def update_delivery(
        self,
        backend: str,
        *,
        acked_seq: int = _UNCHANGED,
        native_id: str | None = _UNCHANGED,
        location: str | None = _UNCHANGED,
        state: DeliveryState = _UNCHANGED,
        error: str | None = _UNCHANGED,
        failures: int = _UNCHANGED,
    ) -> None:
        """Update the given columns of one backend's delivery row (creating the row if missing).

        Raises:
            ValueError: ``state`` is not a :class:`~.contract.DeliveryState`.
        """
        if state is not _UNCHANGED:
            state = DeliveryState(state)
        given = {
            "acked_seq": acked_seq,
            "native_id": native_id,
            "location": location,
            "state": state,
            "error": error,
            "failures": failures,
        }
        columns = {name: value for name, value in given.items() if value is not _UNCHANGED}
        assignments = "".join(f"{name} = ?, " for name in columns)
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO deliveries(backend, updated) VALUES (?, ?)", (backend, time.time()))
            db.execute(
                f"UPDATE deliveries SET {assignments}updated = ? WHERE backend = ?",
                (*columns.values(), time.time(), backend),
            )

    def deliveries(self) -> dict[str, BackendDelivery]:
        """Every backend's delivery state, by backend name."""
        rows = self._db.execute(
            "SELECT backend, acked_seq, native_id, location, state, error, failures FROM deliveries"
        ).fetchall()
        return {
            name: BackendDelivery(name, acked, native_id, location, DeliveryState(state), error, failures)
            for name, acked, native_id, location, state, error, failures in rows
        }

    def reject(self, backend: str, seqs: Iterable[int], reason: str, acked_seq: int | None = None) -> None:
        """Set events aside for ``backend`` for good (its tracker refused them), in one transaction with
        moving its acknowledgement to ``acked_seq`` when given, so they are never delivered again."""
        self._ensure_rejected_table()
        now = time.time()
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO rejected(backend, seq, reason, ts) VALUES (?, ?, ?, ?)",
                [(backend, seq, reason[:2000], now) for seq in seqs],
            )
            if acked_seq is not None:
                db.execute(
                    "UPDATE deliveries SET acked_seq = MAX(acked_seq, ?), updated = ? WHERE backend = ?",
                    (acked_seq, now, backend),
                )

    def rejected(self, backend: str | None = None, limit: int = 1000) -> list[RejectedEvent]:
        """The events set aside (of ``backend``, or every backend's), oldest first, at most ``limit``."""
        if not self._has_rejected:
            return []
        rows = self._db.execute(
            "SELECT r.backend, r.seq, e.kind, e.key, r.reason, r.ts FROM rejected r LEFT JOIN events e "
            "ON e.seq = r.seq WHERE ? IS NULL OR r.backend = ? ORDER BY r.seq, r.backend LIMIT ?",
            (backend, backend, limit),
        ).fetchall()
        return [RejectedEvent(b, seq, kind or "?", key, reason, ts) for b, seq, kind, key, reason, ts in rows]

    def rejected_counts(self) -> dict[str, int]:
        """How many events each backend set aside."""
        if not self._has_rejected:
            return {}
        return dict(self._db.execute("SELECT backend, COUNT(*) FROM rejected GROUP BY backend").fetchall())

    def _ensure_rejected_table(self) -> None:
        if not self._has_rejected:
            self._db.executescript(REJECTED_SCHEMA)
            self._has_rejected = True

    # -- the end of a session -------------------------------------------------------------------

    def record_end(self, status: str, ended: float | None = None) -> None:
        """Journal the end of the open session (a ``finish`` event) and the run's status and end time.

        The trainer's own ``finish()`` journals its end through its writer; this is for whoever ends a
        session the trainer could not end (its delivery process or ``tracelet sync`` after the trainer died:
        KILLED), so such a run gets an end time too.
        """
        now = time.time() if ended is None else ended
        with self._transaction() as db:
            db.execute(
                "INSERT INTO events(kind, key, num, text, step, ts) VALUES (?,?,?,?,?,?)",
                (EventKind.FINISH, None, None, status, None, now),
            )
            db.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                encode_meta(status=status, ended=now),
            )

    # -- notices --------------------------------------------------------------------------------

    def add_notice(self, key: str, message: str) -> None:
        """Record a warning raised during delivery (once per key) for the training process to show."""
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO notices(key, message, ts) VALUES (?, ?, ?)", (key, message, time.time()))

    def notices(self, after: int = 0) -> list[tuple[int, str]]:
        """``(id, message)`` of the notices recorded after ``after``, oldest first."""
        return list(self._db.execute("SELECT id, message FROM notices WHERE id > ? ORDER BY id", (after,)))

    # -- internals ------------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``: takes the write lock up front so two writers queue, not deadlock."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
            return
        # SQLite may already have rolled back (a full disk): the original error is the one that counts.
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")
