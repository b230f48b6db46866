"""The run's journal: one SQLite file that is the source of truth for everything a run logged.

The training process appends events (one transaction per flush interval); the delivery process
reads them in order and writes back, per backend, the last sequence number the tracker accepted.
SQLite in WAL mode lets the two do this concurrently; a killed trainer loses at most the events
of one flush interval, and a killed delivery process resumes from its acknowledgements.

Each thread opens its own :class:`Journal`: SQLite connections are not shared between threads.

A journal is private to its user (files 0600, in directories 0700: a run's params and tags are
nobody else's business). Events a tracker can never take are set aside per backend as *rejected*
(a dead letter, with the reason), so one bad event never holds back the ones behind it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracelet_core.errors import JournalError

__all__ = [
    "JOURNAL_FILENAME",
    "DeliveryState",
    "EventRow",
    "Journal",
    "JournalEvent",
    "RejectedEvent",
    "file_identity",
    "make_private_dir",
]

JOURNAL_FILENAME = "journal.sqlite"
SCHEMA_VERSION = "1"
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700

# (kind, key, num, text, step, ts): the row layout of the events table, without seq.
EventRow = tuple[str, str | None, float | None, str | None, int | None, float]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT,
    num REAL,
    text TEXT,
    step INTEGER,
    ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    backend TEXT PRIMARY KEY,
    acked_seq INTEGER NOT NULL DEFAULT 0,
    native_id TEXT,
    location TEXT,
    state TEXT NOT NULL DEFAULT 'pending',
    error TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    updated REAL
);
CREATE TABLE IF NOT EXISTS notices (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    message TEXT NOT NULL,
    ts REAL NOT NULL
);
"""
# Added after the first release: created on open where missing (older journals lack it).
_REJECTED_SCHEMA = """
CREATE TABLE IF NOT EXISTS rejected (
    backend TEXT NOT NULL,
    seq INTEGER NOT NULL,
    reason TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (backend, seq)
);
"""
_REQUIRED_TABLES = ("meta", "events", "deliveries")


@dataclass(frozen=True, slots=True)
class JournalEvent:
    """One journaled event; see :mod:`tracelet_core.pipeline.queue` for what each kind carries."""

    seq: int
    kind: str
    key: str | None
    num: float | None
    text: str | None
    step: int | None
    ts: float

    @property
    def value(self) -> float:
        """The metric value; non-finite values are stored as text because SQLite turns NaN into NULL."""
        if self.num is not None:
            return self.num
        return float(self.text or "nan")

    def payload(self) -> Any:
        """The JSON payload of start, artifact and media events."""
        return json.loads(self.text or "null")


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """How far one backend has got with this run.

    ``state`` is one of: pending (not opened yet), open, retrying, closed, gave_up, unavailable.
    """

    backend: str
    acked_seq: int
    native_id: str | None
    location: str | None
    state: str
    error: str | None
    failures: int


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """An event one backend's tracker refused for good (a dead letter): its seq, kind, key and why."""

    backend: str
    seq: int
    kind: str
    key: str | None
    reason: str
    ts: float


def make_private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents readable by their owner only; existing ones are left as they are."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)


def file_identity(path: Path) -> tuple[int, int] | None:
    """A file's (device, inode), or None when it does not exist: tells a journal deleted or replaced under a run."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _text(raw: bytes) -> str:
    """Text columns are decoded leniently: a byte that is not UTF-8 must not make a whole journal unreadable."""
    return raw.decode("utf-8", errors="replace")


def metric_columns(value: float) -> tuple[float | None, str | None]:
    """Split a float into the (num, text) columns: finite values in num, NaN/inf as text."""
    if math.isfinite(value):
        return value, None
    return None, repr(value)


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
        >>> j.append([("metric", "loss", 0.5, None, 1, 0.0)])
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
                self._db.executescript(_SCHEMA + _REJECTED_SCHEMA)
                self._db.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
                )
            else:
                self._check_schema()
        except (sqlite3.DatabaseError, JournalError) as exc:
            self._db.close()
            if isinstance(exc, JournalError):
                raise
            raise JournalError(f"Cannot read the Tracelet journal {self.path}: {exc}") from exc

    def _check_schema(self) -> None:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [name for name in _REQUIRED_TABLES if name not in tables]
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
            "SELECT seq, kind, key, num, text, step, ts FROM events WHERE seq > ? AND (? = 0 OR kind != 'metric') "
            "ORDER BY seq LIMIT ?",
            (after, int(skip_metrics), limit),
        )
        return [JournalEvent(*row) for row in cursor.fetchall()]

    def metric_history(self, key: str) -> list[JournalEvent]:
        """Every point of one metric, in the order it was logged."""
        cursor = self._db.execute(
            "SELECT seq, kind, key, num, text, step, ts FROM events WHERE kind = 'metric' AND key = ? ORDER BY seq",
            (key,),
        )
        return [JournalEvent(*row) for row in cursor.fetchall()]

    def last_seq(self) -> int:
        """The sequence number of the last event (0 for an empty journal)."""
        return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])

    def count(self, kind: str | None = None, after: int = 0) -> int:
        """How many events (of ``kind``, if given) come after ``after``."""
        query = "SELECT COUNT(*) FROM events WHERE seq > ? AND (? IS NULL OR kind = ?)"
        return int(self._db.execute(query, (after, kind, kind)).fetchone()[0])

    def last_event(self, kind: str, before: int | None = None) -> JournalEvent | None:
        """The most recent event of ``kind`` (e.g. the last ``finish``), or None.

        With ``before``, only events with a smaller sequence number are considered.
        """
        row = self._db.execute(
            "SELECT seq, kind, key, num, text, step, ts FROM events WHERE kind = ? AND seq < ? "
            "ORDER BY seq DESC LIMIT 1",
            (kind, before if before is not None else 2**62),
        ).fetchone()
        return JournalEvent(*row) if row else None

    # -- metadata -------------------------------------------------------------------------------

    def set_meta(self, **values: Any) -> None:
        """Store JSON-serialisable run metadata (run id, experiment, backends, trainer pid...)."""
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(key, json.dumps(value)) for key, value in values.items()],
            )

    def meta(self) -> dict[str, Any]:
        """All run metadata."""
        rows = self._db.execute("SELECT key, value FROM meta").fetchall()
        result: dict[str, Any] = {}
        for key, value in rows:
            try:
                result[key] = json.loads(value)
            except json.JSONDecodeError:
                result[key] = value
        return result

    # -- deliveries -----------------------------------------------------------------------------

    def register_backends(self, names: Iterable[str]) -> None:
        """Make sure every backend has a delivery row (a backend added on resume starts from 0)."""
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO deliveries(backend, updated) VALUES (?, ?)",
                [(name, time.time()) for name in names],
            )

    def update_delivery(self, backend: str, **fields: Any) -> None:
        """Update one backend's delivery row (acked_seq, native_id, location, state, error, failures)."""
        allowed = {"acked_seq", "native_id", "location", "state", "error", "failures"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown delivery fields: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO deliveries(backend, updated) VALUES (?, ?)", (backend, time.time()))
            db.execute(
                f"UPDATE deliveries SET {assignments}, updated = ? WHERE backend = ?",
                (*fields.values(), time.time(), backend),
            )

    def deliveries(self) -> dict[str, DeliveryState]:
        """Every backend's delivery state, by backend name."""
        rows = self._db.execute(
            "SELECT backend, acked_seq, native_id, location, state, error, failures FROM deliveries"
        ).fetchall()
        return {row[0]: DeliveryState(*row) for row in rows}

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
            self._db.executescript(_REJECTED_SCHEMA)
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
                "INSERT INTO events(kind, key, num, text, step, ts) VALUES ('finish', NULL, NULL, ?, NULL, ?)",
                (status, now),
            )
            db.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [("status", json.dumps(status)), ("ended", json.dumps(now))],
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


def iter_journals(journal_dir: str | Path) -> Iterator[Path]:
    """Every journal file under ``journal_dir`` (``<dir>/<experiment>/<run id>/journal.sqlite``)."""
    yield from sorted(Path(journal_dir).glob(f"*/*/{JOURNAL_FILENAME}"))
