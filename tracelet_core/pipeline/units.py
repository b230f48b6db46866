"""How a delivery worker cuts the journal into tracker calls: one batch of consecutive metrics, params
and tags, or one call for any other event; how it waits for a batch worth a call, and between retries.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from tracelet_core.events import Batch, MetricPoint
from tracelet_core.pipeline.contract import BATCHED_KINDS, EventKind, JournalEvent

__all__ = [
    "BATCH",
    "BATCH_DELAY",
    "BATCH_EVENTS",
    "DeliveryUnit",
    "halves",
    "retry_backoff",
    "to_batch",
    "units",
    "worth_waiting",
]

# Metrics, params and tags wait until this many have accumulated or the first of them has waited
# this long: trackers' per-call costs (a transaction, a request) then spread over ~1000 points
# instead of a few steps' worth, which lowers the CPU that delivery takes while training runs.
# Any other event (start, artifact, media, finish) is delivered with what precedes it at once.
BATCH_EVENTS = 1_000
BATCH_DELAY = 1.0
BATCH: Final = "batch"  # the kind of a unit of consecutive metrics, params and tags


@dataclass(frozen=True)
class DeliveryUnit:
    """Events delivered by one backend call, and the sequence number to acknowledge after it.

    ``kind`` is :data:`BATCH` for consecutive metrics, params and tags (one :class:`~tracelet_core.events.Batch`),
    else the kind of its one event.
    """

    kind: EventKind | str
    last_seq: int
    events: tuple[JournalEvent, ...]


def units(events: list[JournalEvent]) -> Iterator[DeliveryUnit]:
    """Group consecutive metric/param/tag events; every other event is a unit of its own."""
    pending: list[JournalEvent] = []
    for event in events:
        if event.kind in BATCHED_KINDS:
            pending.append(event)
            continue
        if pending:
            yield DeliveryUnit(BATCH, pending[-1].seq, tuple(pending))
            pending = []
        yield DeliveryUnit(event.kind, event.seq, (event,))
    if pending:
        yield DeliveryUnit(BATCH, pending[-1].seq, tuple(pending))


def worth_waiting(events: list[JournalEvent], waiting_since: float) -> bool:
    """True while only a small, young batch of metrics/params/tags is pending (see ``BATCH_EVENTS``)."""
    if len(events) >= BATCH_EVENTS or time.monotonic() - waiting_since >= BATCH_DELAY:
        return False
    return all(event.kind in BATCHED_KINDS for event in events)


def halves(unit: DeliveryUnit) -> tuple[DeliveryUnit, DeliveryUnit]:
    """A batch split in two, in order: how the events a tracker refuses are found among those it takes."""
    middle = len(unit.events) // 2
    first, second = unit.events[:middle], unit.events[middle:]
    return DeliveryUnit(BATCH, first[-1].seq, first), DeliveryUnit(BATCH, second[-1].seq, second)


def to_batch(events: tuple[JournalEvent, ...]) -> Batch:
    """The :class:`~tracelet_core.events.Batch` a backend receives for a unit's metric, param and tag events."""
    batch = Batch()
    for event in events:
        key = event.key or ""
        if event.kind == EventKind.METRIC:
            batch.metrics.append(MetricPoint(key, event.value, event.step, event.ts))
        elif event.kind == EventKind.PARAM:
            batch.params[key] = event.text or ""
        else:
            batch.tags[key] = event.text or ""
    return batch


def retry_backoff(failures: int, cap: float) -> float:
    """Seconds before attempt ``failures + 1``: 0.25 s doubling up to ``cap``, with 20 % jitter."""
    return min(cap, 0.25 * 2 ** min(failures - 1, 16)) * random.uniform(0.8, 1.2)
