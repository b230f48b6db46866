"""How Tracelet's events map onto W&B: rows of one ``run.log`` call, config values, histograms, run ids.

Pure functions, shared by the backend (writing) and the reader (reading offline run files back).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracelet_core.events import MetricPoint

__all__ = [
    "GLOBAL_STEP",
    "STATUS_KEY",
    "WALL_TIME",
    "PointId",
    "Row",
    "config_value",
    "fit_histogram",
    "group_rows",
    "wandb_run_id",
]

GLOBAL_STEP = "trainer/global_step"
WALL_TIME = "tracelet/wall_time"
STATUS_KEY = "tracelet/status"
MAX_HISTOGRAM_BINS = 512  # wandb.Histogram.MAX_LENGTH
_INT = re.compile(r"-?[0-9]+")
_PLAIN_ID = re.compile(r"[a-z0-9]{1,64}")  # W&B's own ids are 8 base-36 characters
PointId = tuple[str, int | None, float]


@dataclass
class Row:
    """One ``run.log`` call: values sharing a step (or, without a step, a timestamp)."""

    step: int | None
    timestamp: float
    values: dict[str, Any] = field(default_factory=dict)
    points: list[PointId] = field(default_factory=list)  # (key, step, timestamp) of what it holds


def group_rows(points: Iterable[MetricPoint]) -> list[Row]:
    """Group points into as few rows as possible without reordering any key's points.

    Points with the same step share a row; points without a step share a row when logged at the same
    time. A point opens a new row when its key is already in the row for its step, or when that row
    comes before the row holding the key's previous point.

    Example:
        >>> points = [MetricPoint(k, v, 5, v) for k, v in [("a", 1.0), ("b", 2.0), ("a", 3.0)]]
        >>> [(r.step, r.values) for r in group_rows(points)]
        [(5, {'a': 1.0, 'b': 2.0}), (5, {'a': 3.0})]
    """
    rows: list[Row] = []
    open_rows: dict[tuple[int | None, float | None], int] = {}
    last_row_of_key: dict[str, int] = {}
    for point in points:
        group = (point.step, point.timestamp if point.step is None else None)
        index = open_rows.get(group)
        if index is None or point.key in rows[index].values or index < last_row_of_key.get(point.key, -1):
            rows.append(Row(point.step, point.timestamp))
            index = open_rows[group] = len(rows) - 1
        row = rows[index]
        row.values[point.key] = point.value
        row.points.append((point.key, point.step, point.timestamp))
        row.timestamp = max(row.timestamp, point.timestamp)
        last_row_of_key[point.key] = index
    return rows


def config_value(text: str) -> Any:
    """A param as W&B users filter on it: the int, finite float or bool it spells exactly, else the text.

    Example:
        >>> config_value("0.001"), config_value("32"), config_value("True"), config_value("1e-3")
        (0.001, 32, True, '1e-3')
    """
    if text in ("True", "False"):
        return text == "True"
    if _INT.fullmatch(text):
        return int(text) if str(int(text)) == text else text
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) and repr(number) == text else text


def fit_histogram(counts: Sequence[float], bins: Sequence[float]) -> tuple[list[float], list[float]]:
    """Merge neighbouring bins until there are at most 512, the most ``wandb.Histogram`` takes.

    Example:
        >>> counts, bins = fit_histogram([1] * 1030, list(range(1031)))
        >>> len(counts), counts[:2], bins[:2], bins[-1]
        (344, [3, 3], [0, 3], 1030)
    """
    if len(counts) <= MAX_HISTOGRAM_BINS:
        return list(counts), list(bins)
    factor = -(-len(counts) // MAX_HISTOGRAM_BINS)
    starts = range(0, len(counts), factor)
    return [sum(counts[i : i + factor]) for i in starts], [bins[i] for i in starts] + [bins[-1]]


def wandb_run_id(run_id: str) -> str:
    """The W&B id of a Tracelet run: the same for every ``open``, so W&B continues one run.

    Tracelet's own ids (32 hex digits) are used as they are; any other id (W&B refuses ``:;,#?/'``
    and whitespace around it) is replaced by 32 hex digits of its SHA-256.

    Example:
        >>> wandb_run_id("9993a005bc9a44b68c35e0a5116922e0"), wandb_run_id("my run/1")
        ('9993a005bc9a44b68c35e0a5116922e0', '7e01178981c9c133620be1db84745253')
    """
    if _PLAIN_ID.fullmatch(run_id):
        return run_id
    return hashlib.sha256(run_id.encode()).hexdigest()[:32]
