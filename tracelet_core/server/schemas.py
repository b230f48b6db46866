"""What the REST API takes and gives: pydantic models, validated before anything is written.

Metric values travel as JSON numbers; NaN and ±infinity, which JSON cannot carry, as the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (both ways).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BatchIn",
    "DeliveryIn",
    "EditIn",
    "PointIn",
    "RunIn",
    "StatusIn",
    "decode_value",
    "encode_value",
]

Status = Literal["RUNNING", "FINISHED", "FAILED", "KILLED"]
TerminalStatus = Literal["FINISHED", "FAILED", "KILLED"]
_SPECIAL = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf, "inf": math.inf, "-inf": -math.inf}
MAX_KEY = 500
MAX_TEXT = 100_000
MAX_POINTS = 100_000
MAX_ENTRIES = 10_000


def decode_value(value: Any) -> float:
    """A metric value from JSON: a number, or one of the strings for NaN and ±infinity.

    Raises:
        ValueError: anything else (a bool, another string, a list...).

    Example:
        >>> decode_value(1), decode_value("-Infinity")
        (1.0, -inf)
    """
    if isinstance(value, bool):
        raise ValueError("a metric value is a number, not a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.lower() in _SPECIAL:
        return _SPECIAL[value.lower()]
    raise ValueError('a metric value is a number or one of "NaN", "Infinity", "-Infinity"')


def encode_value(value: float | None) -> float | str:
    """A metric value for JSON (None, SQLite's NaN, is NaN).

    Example:
        >>> encode_value(0.5), encode_value(None), encode_value(float("inf"))
        (0.5, 'NaN', 'Infinity')
    """
    if value is None or math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
# Checked by pydantic's core (no Python call per point); the strings become floats at ingestion.
Value = float | Literal["NaN", "Infinity", "-Infinity"]
Timestamp = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PointIn(_Strict):
    """One metric point: ``{"key": "loss", "step": 3, "ts": 1760000000.5, "value": 0.25}``."""

    key: Key
    step: int | None = Field(None, ge=-(2**63), lt=2**63)
    ts: Timestamp
    value: Value


class DeliveryIn(_Strict):
    """How far one of the run's other trackers has got (from the run's journal)."""

    state: Annotated[str, Field(max_length=32)]
    acked_seq: int = 0
    native_id: Annotated[str, Field(max_length=500)] | None = None
    location: Annotated[str, Field(max_length=2000)] | None = None
    error: Annotated[str, Field(max_length=2000)] | None = None


class RunIn(_Strict):
    """A run as its tracker opens it (``PUT /api/v1/runs/{run_id}``; repeating it changes nothing)."""

    experiment: Key
    name: Annotated[str, Field(max_length=MAX_KEY)] | None = None
    tags: dict[Key, Text] = Field(default_factory=dict, max_length=MAX_ENTRIES)
    start_time: Timestamp
    host: Annotated[str, Field(max_length=255)] | None = None
    status: Status = "RUNNING"
    deliveries: dict[Key, DeliveryIn] = Field(default_factory=dict, max_length=100)


class BatchIn(_Strict):
    """Consecutive metrics, params and tags of a run, ingested in one transaction.

    ``seq`` is the journal sequence of the batch's first event (-1 when the sender has no journal): with
    the content, it is the batch's idempotency key, so a retried batch is ingested once.
    """

    seq: int = Field(-1, ge=-1, lt=2**63)
    metrics: list[PointIn] = Field(default_factory=list, max_length=MAX_POINTS)
    params: dict[Key, Text] = Field(default_factory=dict, max_length=MAX_ENTRIES)
    tags: dict[Key, Text] = Field(default_factory=dict, max_length=MAX_ENTRIES)


class StatusIn(_Strict):
    """The end of a run (``POST /api/v1/runs/{run_id}/status``)."""

    status: Status
    end_time: Timestamp | None = None
    deliveries: dict[Key, DeliveryIn] = Field(default_factory=dict, max_length=100)


class EditIn(_Strict):
    """An edit of a run's name, params or tags; a key set to null is removed."""

    name: Annotated[str, Field(max_length=MAX_KEY)] | None = None
    params: dict[Key, Text | None] = Field(default_factory=dict, max_length=MAX_ENTRIES)
    tags: dict[Key, Text | None] = Field(default_factory=dict, max_length=MAX_ENTRIES)
