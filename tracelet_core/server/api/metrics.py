"""``/api/v1/runs/{run_id}/batches`` (ingestion) and ``/api/v1/runs/{run_id}/metrics`` (histories)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from tracelet_core.server.api.deps import DbSession, RunId, no_run
from tracelet_core.server.api.views import latest_view
from tracelet_core.server.schemas import BatchIn, encode_value
from tracelet_core.server.store import ingest, queries
from tracelet_core.server.store.models import Run

__all__ = ["router"]

router = APIRouter(prefix="/runs/{run_id}", tags=["metrics"])


@router.post("/batches", summary="Ingest a batch of metrics, params and tags (trackers)")
def ingest_batch(session: DbSession, run_id: RunId, body: BatchIn) -> dict[str, Any]:
    """Write the batch in one transaction, once: a retry of the same batch (same ``seq`` and content)
    answers ``duplicate: true`` and writes nothing. Send it gzip-compressed (``Content-Encoding: gzip``).
    """
    try:
        result = ingest.ingest_batch(session, run_id, body)
    except ingest.RunGone:
        raise no_run(run_id) from None
    return {"points": result.points, "duplicate": result.duplicate}


@router.get("/metrics", summary="A run's metrics")
def metric_keys(session: DbSession, run_id: RunId) -> dict[str, Any]:
    """Each metric's last point and point count."""
    if session.get(Run, run_id) is None:
        raise no_run(run_id)
    _, _, latest = queries.run_contents(session, run_id)
    return {"metrics": {point.key: latest_view(point) for point in latest}}


@router.get("/history", summary="A metric's history, whole or downsampled")
def metric_history(
    session: DbSession,
    run_id: RunId,
    key: Annotated[str, Query(min_length=1, max_length=500)],
    points: Annotated[int | None, Query(ge=2, le=100_000, description="at most this many points")] = None,
) -> dict[str, Any]:
    """Every point of ``key`` as ``[step, timestamp, value]`` in step order; with ``points=N``, at most N:
    each bucket of consecutive points keeps its lowest and highest value, so spikes survive.
    """
    if session.get(Run, run_id) is None:
        raise no_run(run_id)
    found = queries.history(session, run_id, key, points)
    return {
        "key": key,
        "total": found.total,
        "downsampled": found.downsampled,
        "points": [[step, ts, encode_value(value)] for step, ts, value in found.points],
    }
