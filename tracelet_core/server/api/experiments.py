"""``/api/v1/experiments`` and ``/api/v1/health``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select

from tracelet_core.server.api.deps import DbSession
from tracelet_core.server.store.models import Experiment, Run

__all__ = ["router"]

router = APIRouter(tags=["experiments"])


@router.get("/experiments", summary="Experiments")
def list_experiments(session: DbSession) -> dict[str, Any]:
    """Every experiment with its number of (not deleted) runs, by name."""
    counts = (
        select(Experiment.name, Experiment.created, func.count(Run.id))
        .outerjoin(Run, (Run.experiment_id == Experiment.id) & Run.deleted_at.is_(None))
        .group_by(Experiment.id)
        .order_by(Experiment.name)
    )
    return {
        "experiments": [
            {"name": name, "created": created, "runs": runs} for name, created, runs in session.execute(counts)
        ]
    }
