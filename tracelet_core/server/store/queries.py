"""Reading runs out of the store: search with the filter language and cursor pagination, run detail,
metric history (whole, or downsampled keeping each bucket's min and max).

Searches use :mod:`tracelet_core.filters`, the language ``tracelet runs`` takes: the filter is parsed
(and refused with a :class:`~tracelet_core.filters.FilterError` naming the bad word) before any query
runs, and its values are only ever compared in Python or bound as parameters, never put into SQL text.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from tracelet_core.filters import Filter, RunFacts
from tracelet_core.server.store.models import Experiment, LatestMetric, MetricPoint, Param, Run, Tag

__all__ = ["SORTS", "BadCursor", "History", "RunPage", "history", "run_contents", "search_runs"]

SortField = Literal["start_time", "end_time", "updated", "name", "status"]
SORTS: dict[str, Any] = {  # the column (or expression) each sort orders by
    "start_time": Run.start_time,
    "end_time": func.coalesce(Run.end_time, 0.0),
    "updated": Run.updated,
    "name": func.coalesce(Run.name, ""),
    "status": Run.status,
}
_CHUNK = 500


class BadCursor(ValueError):
    """A cursor this search did not make (another sort, or not a cursor at all)."""


@dataclass(frozen=True)
class RunPage:
    """One page of a search: the runs (with their experiment's name) and the cursor of the next page."""

    runs: list[tuple[Run, str]]
    next_cursor: str | None


def encode_cursor(sort: str, descending: bool, value: Any, run_id: str) -> str:
    """An opaque cursor: where the next page starts.

    Example:
        >>> decode_cursor(encode_cursor("name", False, "b", "r1"), "name", False)
        ('b', 'r1')
    """
    raw = json.dumps({"s": sort, "d": descending, "v": value, "id": run_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, descending: bool) -> tuple[Any, str]:
    """The (sort value, run id) a cursor holds.

    Raises:
        BadCursor: not one of ours, or made for another sort.
    """
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value, run_id = data["v"], data["id"]
        same = data["s"] == sort and data["d"] == descending
    except (ValueError, binascii.Error, KeyError, TypeError) as exc:
        raise BadCursor("the cursor is damaged: pass back the next_cursor of the previous page unchanged") from exc
    if not same or not isinstance(run_id, str) or not isinstance(value, int | float | str):
        raise BadCursor("the cursor belongs to a search with another sort order")
    return value, run_id


def _facts(session: Session, runs: Sequence[tuple[Run, str]], contents: bool) -> list[RunFacts]:
    ids = [run.id for run, _ in runs]
    params: dict[str, dict[str, str]] = {i: {} for i in ids}
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
    if contents and ids:
        for run_id, key, text in session.execute(
            select(Param.run_id, Param.key, Param.value).where(Param.run_id.in_(ids))
        ):
            params[run_id][key] = text
        for run_id, key, text in session.execute(select(Tag.run_id, Tag.key, Tag.value).where(Tag.run_id.in_(ids))):
            tags[run_id][key] = text
        latest = select(LatestMetric.run_id, LatestMetric.key, LatestMetric.value).where(LatestMetric.run_id.in_(ids))
        for run_id, key, number in session.execute(latest):
            metrics[run_id][key] = math.nan if number is None else number
    return [
        RunFacts(
            run.status, run.name, experiment, run.id, run.start_time, tags[run.id], params[run.id], metrics[run.id]
        )
        for run, experiment in runs
    ]


def _ordered(query: Any, sort: str, descending: bool, after: tuple[Any, str] | None) -> Any:
    column = SORTS[sort]
    if after is not None:
        position = tuple_(column, Run.id)
        bound = tuple_(*after)
        query = query.where(position < bound if descending else position > bound)
    order = (column.desc(), Run.id.desc()) if descending else (column.asc(), Run.id.asc())
    return query.order_by(*order)


def search_runs(
    session: Session,
    wanted: Filter,
    *,
    sort: str = "start_time",
    descending: bool = True,
    cursor: str | None = None,
    limit: int = 50,
    deleted: bool = False,
) -> RunPage:
    """Runs matching ``wanted``, sorted, ``limit`` at a time; ``deleted`` lists soft-deleted runs instead.

    Raises:
        BadCursor: the cursor is not one this search made.
    """
    after = decode_cursor(cursor, sort, descending) if cursor else None
    base = select(Run, Experiment.name).join(Experiment, Run.experiment_id == Experiment.id)
    base = base.where(Run.deleted_at.is_not(None) if deleted else Run.deleted_at.is_(None))
    found: list[tuple[Run, str]] = []
    while True:
        chunk = [(row[0], row[1]) for row in session.execute(_ordered(base, sort, descending, after).limit(_CHUNK))]
        for pair, facts in zip(chunk, _facts(session, chunk, wanted.needs_contents), strict=True):
            if wanted.matches(facts):
                found.append(pair)
                if len(found) == limit:
                    run = pair[0]
                    value = session.execute(select(SORTS[sort]).where(Run.id == run.id)).scalar_one()
                    return RunPage(found, encode_cursor(sort, descending, value, run.id))
        if len(chunk) < _CHUNK:
            return RunPage(found, None)
        last = chunk[-1][0]
        after = (session.execute(select(SORTS[sort]).where(Run.id == last.id)).scalar_one(), last.id)


def run_contents(session: Session, run_id: str) -> tuple[dict[str, str], dict[str, str], list[LatestMetric]]:
    """A run's params, tags and latest metric points (sorted by key)."""
    # .all(): a Result has keys() (its column names), which dict() would take for a mapping's.
    params = dict(session.execute(select(Param.key, Param.value).where(Param.run_id == run_id)).tuples().all())
    tags = dict(session.execute(select(Tag.key, Tag.value).where(Tag.run_id == run_id)).tuples().all())
    latest = list(session.scalars(select(LatestMetric).where(LatestMetric.run_id == run_id).order_by(LatestMetric.key)))
    return params, tags, latest


@dataclass(frozen=True)
class History:
    """A metric's points as ``(step, timestamp, value)``, how many there are in all, and whether these are a sample."""

    points: list[tuple[int | None, float, float | None]]
    total: int
    downsampled: bool


def history(session: Session, run_id: str, key: str, max_points: int | None = None) -> History:
    """Every point of ``key`` in step order (ties in logged order), or at most ``max_points`` of them.

    Downsampling cuts the series into ``max_points // 2`` buckets of consecutive points and keeps each
    bucket's lowest and highest value (in step order), so a spike survives any zoom level.
    """
    where = (MetricPoint.run_id == run_id, MetricPoint.key == key)
    total = session.execute(select(func.count()).select_from(MetricPoint).where(*where)).scalar_one()
    query = select(MetricPoint.step, MetricPoint.timestamp, MetricPoint.value).where(*where)
    rows = session.execute(query.order_by(MetricPoint.step, MetricPoint.id)).tuples()
    if max_points is None or total <= max_points:
        return History([(step, ts, value) for step, ts, value in rows], total, False)
    return History(_min_max(rows, total, max(max_points // 2, 1)), total, True)


def _min_max(rows: Any, total: int, buckets: int) -> list[tuple[int | None, float, float | None]]:
    size = math.ceil(total / buckets)
    kept: list[tuple[int | None, float, float | None]] = []
    bucket: list[tuple[int | None, float, float | None]] = []
    for row in rows:
        bucket.append((row[0], row[1], row[2]))
        if len(bucket) == size:
            kept.extend(_extremes(bucket))
            bucket = []
    if bucket:
        kept.extend(_extremes(bucket))
    return kept


def _extremes(bucket: list[tuple[int | None, float, float | None]]) -> list[tuple[int | None, float, float | None]]:
    numbered = [(i, p) for i, p in enumerate(bucket) if p[2] is not None]
    if not numbered:
        return [bucket[0]]
    low = min(numbered, key=lambda item: item[1][2])  # type: ignore[arg-type, return-value]
    high = max(numbered, key=lambda item: item[1][2])  # type: ignore[arg-type, return-value]
    return [p for _, p in sorted({low[0]: low[1], high[0]: high[1]}.items())]
