"""The journal's SQLite layout: four tables, and a fifth added after the first release.

What each column holds is typed in :mod:`.contract`. The layout has not changed since the first
journal (``schema_version`` 1): a journal any Tracelet wrote opens as it is, and one from before the
``rejected`` table gets it when an event is first set aside. A change to a column would bump :data:`SCHEMA_VERSION` and
migrate older journals when :class:`~.journal.Journal` opens them.
"""

from __future__ import annotations

from tracelet_core.pipeline.contract import SCHEMA_VERSION, DeliveryState

__all__ = ["REJECTED_SCHEMA", "REQUIRED_TABLES", "SCHEMA", "SCHEMA_VERSION"]

SCHEMA = f"""
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
    state TEXT NOT NULL DEFAULT '{DeliveryState.PENDING.value}',
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
REJECTED_SCHEMA = """
CREATE TABLE IF NOT EXISTS rejected (
    backend TEXT NOT NULL,
    seq INTEGER NOT NULL,
    reason TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (backend, seq)
);
"""
REQUIRED_TABLES = ("meta", "events", "deliveries")
