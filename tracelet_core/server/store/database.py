"""Opening the server's store: the engine for a URL, its schema brought up to date by Alembic, sessions.

``sqlite:///PATH`` (the default, one file) or ``postgresql+psycopg://USER:PASSWORD@HOST/DB``. Several
server processes may start at once on one database: PostgreSQL serialises their migrations with an
advisory lock, SQLite with a file lock beside the database.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from tracelet_core.errors import ConfigurationError

__all__ = ["Store", "open_store"]

MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 0x7472_6163  # "trac": PostgreSQL advisory lock key held while migrating


class Store:
    """An open store: the engine and a session factory (``with store.session() as s, s.begin(): ...``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session = sessionmaker(engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def new_session(self) -> Session:
        """A session the caller closes."""
        return self.session()

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers (the API) never wait for the writer (ingestion); NORMAL is durable against a killed server.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``.

    Raises:
        ConfigurationError: not a SQLite or PostgreSQL URL.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigurationError(
            f"Bad store URL {url!r}: {exc}. Use sqlite:///PATH or postgresql+psycopg://..."
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, pool_size=8, max_overflow=8)
    raise ConfigurationError(f"Store URL {url!r}: Tracelet's server stores runs in sqlite:/// or postgresql+psycopg://")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic ``upgrade head``), one process at a time."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        from tracelet_core.locks import store_lock

        lock = store_lock(Path(database).expanduser())
    with lock, engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_store(url: str) -> Store:
    """Open (and migrate) the store at ``url``.

    Raises:
        ConfigurationError: a bad URL.
    """
    engine = make_engine(url)
    migrate(engine)
    return Store(engine)
