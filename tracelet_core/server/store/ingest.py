"""Writing runs into the store: open (upsert) a run, ingest a batch once, end a run, edit, soft delete.

Every function works in the caller's transaction (``with store.session() as s, s.begin(): ...``), so a
request writes all of its rows or none. Batches are idempotent by ``(run id, journal sequence, digest of
the content)``: the key row and the points go in one transaction, and a batch whose key is already there
writes nothing.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tracelet_core.server.schemas import BatchIn, EditIn, RunIn, StatusIn, decode_value
from tracelet_core.server.store.models import (
    Experiment,
    IngestedBatch,
    LatestMetric,
    Param,
    Run,
    Tag,
)

__all__ = ["IngestResult", "RunGone", "edit_run", "end_run", "ingest_batch", "set_deleted", "upsert_run"]

GIT_PREFIX, ENV_PREFIX = "git.", "env."


class RunGone(LookupError):
    """The run does not exist (or is deleted, where that matters)."""


@dataclass(frozen=True)
class IngestResult:
    """What a batch did: the points written (0 for a duplicate) and whether it was one."""

    points: int
    duplicate: bool


def _dialect_insert(session: Session, model: type[Any]) -> Any:
    """``INSERT`` with ``ON CONFLICT`` clauses, in the session's dialect (SQLite and PostgreSQL both have them)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(model)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(model)


def _experiment_id(session: Session, name: str) -> int:
    """The id of experiment ``name``, created if missing (a concurrent creator is harmless)."""
    statement = _dialect_insert(session, Experiment).values(name=name, created=time.time())
    session.execute(statement.on_conflict_do_nothing(index_elements=["name"]))
    return int(session.scalars(select(Experiment.id).where(Experiment.name == name)).one())


def _upsert_pairs(session: Session, model: type[Param] | type[Tag], run_id: str, values: Mapping[str, str]) -> None:
    if not values:
        return
    statement = _dialect_insert(session, model)
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "key"], set_={"value": statement.excluded.value}
    )
    session.execute(statement, [{"run_id": run_id, "key": k, "value": v} for k, v in values.items()])


def _facts_from_tags(run: Run, tags: Mapping[str, str]) -> None:
    """Git and environment facts arrive as ``git.*`` and ``env.*`` tags (Tracelet's collectors)."""
    git = {k.removeprefix(GIT_PREFIX): v for k, v in tags.items() if k.startswith(GIT_PREFIX)}
    env = {k.removeprefix(ENV_PREFIX): v for k, v in tags.items() if k.startswith(ENV_PREFIX)}
    if git:
        run.git = {**(run.git or {}), **git}
    if env:
        run.environment = {**(run.environment or {}), **env}


def _deliveries(run: Run, deliveries: Mapping[str, Any]) -> None:
    if deliveries:
        run.deliveries = {**(run.deliveries or {}), **{k: v.model_dump() for k, v in deliveries.items()}}


def upsert_run(session: Session, run_id: str, body: RunIn) -> tuple[Run, bool]:
    """Create the run, or bring it up to date when it exists (a resumed run goes back to RUNNING).

    Returns:
        The run and whether it was created.
    """
    experiment_id = _experiment_id(session, body.experiment)
    now = time.time()
    statement = _dialect_insert(session, Run).values(
        id=run_id,
        experiment_id=experiment_id,
        name=body.name,
        status=body.status,
        start_time=body.start_time,
        updated=now,
        host=body.host,
        git={},
        environment={},
        deliveries={},
    )
    created = _inserted(session, statement.on_conflict_do_nothing(index_elements=["id"]).returning(Run.id))
    run = session.get(Run, run_id, with_for_update=not created and _locks_rows(session))
    assert run is not None
    if not created:
        run.status, run.updated, run.end_time = body.status, now, None
        run.name = body.name or run.name
        run.host = body.host or run.host
    _facts_from_tags(run, body.tags)
    _deliveries(run, body.deliveries)
    _upsert_pairs(session, Tag, run_id, body.tags)
    return run, created


def _inserted(session: Session, statement: Any) -> bool:
    """Whether an ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` wrote its row (``rowcount`` is not reliable
    across drivers for it: psycopg's reads -1 here)."""
    return session.execute(statement).first() is not None


def _locks_rows(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def batch_digest(body: BatchIn) -> str:
    """The content's half of a batch's idempotency key: hex SHA-256 of its JSON (pydantic's own serialiser,
    in the order sent: a retry sends the same batch in the same order)."""
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def _live_run(session: Session, run_id: str) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise RunGone(run_id)
    return run


def ingest_batch(session: Session, run_id: str, body: BatchIn) -> IngestResult:
    """Write a batch's points, params and tags once.

    Raises:
        RunGone: the run was never opened (``PUT /api/v1/runs/{id}`` comes first).
    """
    run = _live_run(session, run_id)
    key = {"run_id": run_id, "seq": body.seq, "digest": batch_digest(body)}
    fresh = _dialect_insert(session, IngestedBatch).values(**key, points=len(body.metrics), received=time.time())
    if not _inserted(session, fresh.on_conflict_do_nothing().returning(IngestedBatch.seq)):
        return IngestResult(0, True)
    if body.metrics:
        rows = [(run_id, p.key, p.step, p.ts, _stored(p.value)) for p in body.metrics]
        _insert_points(session, rows)
        _update_latest(session, rows)
    _upsert_pairs(session, Param, run_id, body.params)
    _upsert_pairs(session, Tag, run_id, body.tags)
    _facts_from_tags(run, body.tags)
    run.updated = time.time()
    return IngestResult(len(body.metrics), False)


def _stored(value: float | str) -> float | None:
    """A value as the points table keeps it: NaN as NULL (SQLite cannot store NaN), ±inf as such."""
    if isinstance(value, str):
        value = decode_value(value)
    return None if math.isnan(value) else value


def _insert_points(session: Session, rows: list[tuple[str, str, int | None, float, float | None]]) -> None:
    """One executemany through the driver: SQLAlchemy's per-row parameter handling costs more than the
    insert itself at a thousand points a batch."""
    connection = session.connection()
    marks = ", ".join(["?"] * 5 if connection.dialect.paramstyle == "qmark" else ["%s"] * 5)
    sql = f"INSERT INTO metric_points (run_id, key, step, timestamp, value) VALUES ({marks})"
    connection.exec_driver_sql(sql, rows)


def _update_latest(session: Session, rows: list[tuple[str, str, int | None, float, float | None]]) -> None:
    """Each key's last point of the batch becomes its latest; its count grows by the batch's points."""
    last: dict[str, tuple[str, str, int | None, float, float | None]] = {}
    counts: dict[str, int] = {}
    for row in rows:
        last[row[1]] = row
        counts[row[1]] = counts.get(row[1], 0) + 1
    fields = ("run_id", "key", "step", "timestamp", "value")
    values = [{**dict(zip(fields, row, strict=True)), "count": counts[key]} for key, row in last.items()]
    statement = _dialect_insert(session, LatestMetric)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={
            "step": excluded.step,
            "timestamp": excluded.timestamp,
            "value": excluded.value,
            "count": LatestMetric.count + excluded.count,
        },
    )
    session.execute(statement, values)


def end_run(session: Session, run_id: str, body: StatusIn) -> Run:
    """Set the run's status (and end time, for a terminal one); repeating it changes nothing.

    Raises:
        RunGone: no such run.
    """
    run = _live_run(session, run_id)
    run.status = body.status
    run.end_time = (body.end_time or time.time()) if body.status != "RUNNING" else None
    run.updated = time.time()
    _deliveries(run, body.deliveries)
    return run


def edit_run(session: Session, run_id: str, body: EditIn) -> Run:
    """Rename the run, set or remove (null) params and tags.

    Raises:
        RunGone: no such run.
    """
    run = _live_run(session, run_id)
    if body.name is not None:
        run.name = body.name
    for model, changes in ((Param, body.params), (Tag, body.tags)):
        _upsert_pairs(session, model, run_id, {k: v for k, v in changes.items() if v is not None})
        removed = [k for k, v in changes.items() if v is None]
        if removed:
            session.execute(delete(model).where(model.run_id == run_id, model.key.in_(removed)))
    run.updated = time.time()
    return run


def set_deleted(session: Session, run_id: str, deleted: bool) -> Run:
    """Soft delete (hidden from searches, kept whole) or restore a run; both idempotent.

    Raises:
        RunGone: no such run.
    """
    run = _live_run(session, run_id)
    if deleted and run.deleted_at is None:
        run.deleted_at = time.time()
    elif not deleted:
        run.deleted_at = None
    return run
