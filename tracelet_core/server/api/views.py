"""How runs and points look in the API's answers (plain dicts, JSON-ready)."""

from __future__ import annotations

from typing import Any

from tracelet_core.server.schemas import encode_value
from tracelet_core.server.store.models import LatestMetric, Run

__all__ = ["latest_view", "run_view"]


def run_view(run: Run, experiment: str, **extra: Any) -> dict[str, Any]:
    """A run's own fields (what a listing shows), with ``extra`` (params, tags, metrics) in a detail."""
    return {
        "id": run.id,
        "experiment": experiment,
        "name": run.name,
        "status": run.status,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "updated": run.updated,
        "host": run.host,
        "git": run.git or {},
        "environment": run.environment or {},
        "deliveries": run.deliveries or {},
        "deleted": run.deleted_at is not None,
        "deleted_at": run.deleted_at,
        **extra,
    }


def latest_view(point: LatestMetric) -> dict[str, Any]:
    """A metric's last point and count."""
    return {"step": point.step, "ts": point.timestamp, "value": encode_value(point.value), "count": point.count}
