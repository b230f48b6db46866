"""The live feed: new metric points pushed to WebSocket subscribers as they are ingested.

Every point has a sequence number, its ``metric_points.id``, and the feed is built on the database:
one task per server process reads the points past the last one it saw, a few times a second, and
hands each to the subscribers whose runs and keys it matches. Replicas sharing one PostgreSQL thus
all see every point, whichever replica ingested it. A subscriber that falls behind (its queue full)
is disconnected, and resumes from the last sequence it received: what it missed comes back from the
database, so memory stays bounded whatever the clients do.

Known limit: on PostgreSQL, a batch committed after a later-numbered one (two concurrent writers)
can be passed over by the feed's cursor; a subscriber that resumes gets it from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from tracelet_core.server.schemas import encode_value
from tracelet_core.server.store.database import Store
from tracelet_core.server.store.models import MetricPoint

__all__ = ["LiveFeed", "Subscription", "points_after"]

log = logging.getLogger("tracelet.server.live")
POLL_SECONDS = 0.05
READ_LIMIT = 20_000
QUEUE_LIMIT = 100  # messages (each up to READ_LIMIT points) a subscriber may have waiting

LivePoint = list[Any]  # [seq, run_id, key, step, timestamp, value]


@dataclass(eq=False)
class Subscription:
    """What one client follows: runs (empty: every run) and metric keys (empty: every key)."""

    runs: frozenset[str]
    keys: frozenset[str]
    queue: asyncio.Queue[list[LivePoint] | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))

    def wants(self, point: LivePoint) -> bool:
        """Whether ``point`` belongs to this subscription."""
        return (not self.runs or point[1] in self.runs) and (not self.keys or point[2] in self.keys)


def points_after(
    store: Store, after: int, runs: Collection[str] = (), keys: Collection[str] = (), limit: int = READ_LIMIT
) -> list[LivePoint]:
    """Points with a sequence above ``after`` (of ``runs`` and ``keys``, when given), in sequence order."""
    columns = (MetricPoint.id, MetricPoint.run_id, MetricPoint.key, MetricPoint.step, MetricPoint.timestamp)
    query = select(*columns, MetricPoint.value).where(MetricPoint.id > after)
    if runs:
        query = query.where(MetricPoint.run_id.in_(list(runs)))
    if keys:
        query = query.where(MetricPoint.key.in_(list(keys)))
    with store.new_session() as session:
        rows = session.execute(query.order_by(MetricPoint.id).limit(limit)).all()
    return [[seq, run, key, step, ts, encode_value(value)] for seq, run, key, step, ts, value in rows]


def last_sequence(store: Store) -> int:
    """The highest point sequence in the store (0 when empty)."""
    with store.new_session() as session:
        return int(session.execute(select(func.coalesce(func.max(MetricPoint.id), 0))).scalar_one())


class LiveFeed:
    """Reads new points from the store and fans them out to the subscriptions."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.subscriptions: set[Subscription] = set()
        self.last = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start following the store from its current end."""
        self.last = await asyncio.to_thread(last_sequence, self.store)
        self._task = asyncio.create_task(self._follow(), name="tracelet-live-feed")

    async def stop(self) -> None:
        """Stop following; every subscriber is told to go."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for subscription in self.subscriptions:
            self._drop(subscription)

    def subscribe(self, runs: Collection[str], keys: Collection[str]) -> Subscription:
        """A new subscription, fed from the next points read on."""
        subscription = Subscription(frozenset(runs), frozenset(keys))
        self.subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop feeding ``subscription``."""
        self.subscriptions.discard(subscription)

    async def _follow(self) -> None:
        while True:
            try:
                points = await asyncio.to_thread(points_after, self.store, self.last) if self.subscriptions else []
            except Exception:  # the database is away for a moment: try again, the cursor has not moved
                log.exception("live feed: reading new points failed")
                points = []
            if points:
                self.last = points[-1][0]
                self._fan_out(points)
            elif not self.subscriptions:
                self.last = await asyncio.to_thread(last_sequence, self.store)
            if len(points) < READ_LIMIT:
                await asyncio.sleep(POLL_SECONDS)

    def _fan_out(self, points: list[LivePoint]) -> None:
        for subscription in list(self.subscriptions):
            wanted = [point for point in points if subscription.wants(point)]
            if not wanted:
                continue
            try:
                subscription.queue.put_nowait(wanted)
            except asyncio.QueueFull:
                self._drop(subscription)

    def _drop(self, subscription: Subscription) -> None:
        """Disconnect a subscriber (it resumes from its last sequence and reads the rest from the database)."""
        self.subscriptions.discard(subscription)
        while not subscription.queue.empty():
            subscription.queue.get_nowait()
        subscription.queue.put_nowait(None)
