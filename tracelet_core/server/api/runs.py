"""``/api/v1/runs``: open and end runs (trackers), search, detail, edits, soft delete and restore."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from tracelet_core.filters import FilterError, parse_filter
from tracelet_core.server.api.deps import DbSession, RunId, no_run
from tracelet_core.server.api.views import latest_view, run_view
from tracelet_core.server.errors import Problem
from tracelet_core.server.schemas import EditIn, RunIn, StatusIn
from tracelet_core.server.store import ingest, queries
from tracelet_core.server.store.models import Experiment, Run

__all__ = ["router"]

router = APIRouter(prefix="/runs", tags=["runs"])


def _experiment(session: DbSession, run: Run) -> str:
    return str(session.execute(select(Experiment.name).where(Experiment.id == run.experiment_id)).scalar_one())


def _detail(session: DbSession, run: Run) -> dict[str, Any]:
    params, tags, latest = queries.run_contents(session, run.id)
    metrics = {point.key: latest_view(point) for point in latest}
    return run_view(run, _experiment(session, run), params=params, tags=tags, metrics=metrics)


@router.get("", summary="Search runs")
def search_runs(
    session: DbSession,
    filter: Annotated[str, Query(max_length=4000, description="e.g. status=FINISHED param.lr>0.01 since=2d")] = "",
    sort: Literal["start_time", "end_time", "updated", "name", "status"] = "start_time",
    order: Literal["asc", "desc"] = "desc",
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    deleted: bool = False,
) -> dict[str, Any]:
    """Runs matching a filter (the language of ``tracelet runs``), sorted, a page at a time.

    Pass the answer's ``next_cursor`` back as ``cursor`` for the next page (null: the last page).
    ``deleted=true`` lists the soft-deleted runs instead.
    """
    try:
        wanted = parse_filter(filter)
    except FilterError as exc:
        raise Problem(400, str(exc), filter_error={"reason": exc.reason, "start": exc.start, "end": exc.end}) from exc
    try:
        page = queries.search_runs(
            session, wanted, sort=sort, descending=order == "desc", cursor=cursor, limit=limit, deleted=deleted
        )
    except queries.BadCursor as exc:
        raise Problem(400, str(exc)) from exc
    return {"runs": [run_view(run, experiment) for run, experiment in page.runs], "next_cursor": page.next_cursor}


@router.get("/{run_id}", summary="Run detail")
def get_run(session: DbSession, run_id: RunId) -> dict[str, Any]:
    """A run with its params, tags and each metric's last point (soft-deleted runs too, marked so)."""
    run = session.get(Run, run_id)
    if run is None:
        raise no_run(run_id)
    return _detail(session, run)


@router.put("/{run_id}", summary="Open a run (trackers)")
def open_run(session: DbSession, run_id: RunId, body: RunIn, response: Response) -> dict[str, Any]:
    """Create the run or bring it up to date (idempotent): what the ``tracelet`` tracker calls first."""
    run, created = ingest.upsert_run(session, run_id, body)
    response.status_code = 201 if created else 200
    return run_view(run, body.experiment)


@router.post("/{run_id}/status", summary="End a run (trackers)")
def set_status(session: DbSession, run_id: RunId, body: StatusIn) -> dict[str, Any]:
    """Set the run's status and end time (idempotent)."""
    try:
        run = ingest.end_run(session, run_id, body)
    except ingest.RunGone:
        raise no_run(run_id) from None
    return run_view(run, _experiment(session, run))


@router.patch("/{run_id}", summary="Edit a run's name, params and tags")
def edit_run(session: DbSession, run_id: RunId, body: EditIn) -> dict[str, Any]:
    """Set params and tags (a null value removes the key) and the name."""
    try:
        run = ingest.edit_run(session, run_id, body)
    except ingest.RunGone:
        raise no_run(run_id) from None
    session.flush()
    return _detail(session, run)


@router.delete("/{run_id}", summary="Soft-delete a run")
def delete_run(session: DbSession, run_id: RunId) -> dict[str, Any]:
    """Hide the run from searches; everything stays, and ``POST .../restore`` brings it back."""
    try:
        run = ingest.set_deleted(session, run_id, True)
    except ingest.RunGone:
        raise no_run(run_id) from None
    return run_view(run, _experiment(session, run))


@router.post("/{run_id}/restore", summary="Restore a soft-deleted run")
def restore_run(session: DbSession, run_id: RunId) -> dict[str, Any]:
    """Undo a soft delete."""
    try:
        run = ingest.set_deleted(session, run_id, False)
    except ingest.RunGone:
        raise no_run(run_id) from None
    return run_view(run, _experiment(session, run))
