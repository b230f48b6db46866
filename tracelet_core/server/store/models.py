"""The server's tables (SQLAlchemy 2 declarative models); the same schema on SQLite and PostgreSQL.

The schema is created and upgraded by the Alembic migrations next to this module (see
:mod:`.database`), never by ``create_all``: a server started on an older database upgrades it.

* ``experiments``: one row per experiment name.
* ``runs``: Tracelet's run id is the primary key (runs arrive from many machines, each naming its own);
  status, times, host, git and environment facts, the delivery state of the run's other trackers,
  ``deleted_at`` for soft delete, and ``journal_seq``, how far ``--follow`` has read the run's journal.
* ``params`` / ``tags``: one row per key.
* ``metric_points``: every point (run, key, step, timestamp, value), bulk-inserted; NaN is stored as NULL
  (SQLite turns NaN into NULL anyway), ±inf as such. ``ix_points_history`` serves a key's history.
* ``latest_metrics``: each key's last point, kept at ingest, for run listings and ``metric.KEY`` filters.
* ``ingested_batches``: the idempotency keys of ingested batches ``(run, journal sequence, digest)``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "Experiment", "IngestedBatch", "LatestMetric", "MetricPoint", "Param", "Run", "Tag"]

ID_LENGTH = 128
KEY_LENGTH = 500


class Base(DeclarativeBase):
    """The declarative base of every server table."""


class Experiment(Base):
    """An experiment: a name runs are grouped under."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(KEY_LENGTH), unique=True)
    created: Mapped[float] = mapped_column(Float)


class Run(Base):
    """One run, keyed by Tracelet's run id."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    status: Mapped[str] = mapped_column(String(16), default="RUNNING")
    start_time: Mapped[float] = mapped_column(Float, index=True)
    end_time: Mapped[float | None] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float)
    host: Mapped[str | None] = mapped_column(String(255))
    git: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    environment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    deliveries: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    deleted_at: Mapped[float | None] = mapped_column(Float)
    journal_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")  # read by --follow


class Param(Base):
    """One hyperparameter of a run (flattened with ``/``), as text."""

    __tablename__ = "params"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Tag(Base):
    """One tag of a run."""

    __tablename__ = "tags"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class MetricPoint(Base):
    """One metric value. ``id`` keeps the order points were ingested in (the logged order per key)."""

    __tablename__ = "metric_points"
    __table_args__ = (Index("ix_points_history", "run_id", "key", "step"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    step: Mapped[int | None] = mapped_column(BigInteger)
    timestamp: Mapped[float] = mapped_column(Float)
    value: Mapped[float | None] = mapped_column(Float)


class LatestMetric(Base):
    """The last point logged for one key of a run, and how many there are."""

    __tablename__ = "latest_metrics"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    step: Mapped[int | None] = mapped_column(BigInteger)
    timestamp: Mapped[float] = mapped_column(Float)
    value: Mapped[float | None] = mapped_column(Float)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class IngestedBatch(Base):
    """The idempotency key of one ingested batch: a retry of the same batch finds it and writes nothing."""

    __tablename__ = "ingested_batches"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    points: Mapped[int] = mapped_column(Integer)
    received: Mapped[float] = mapped_column(Float)
