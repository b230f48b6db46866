"""``/api/v1/stream``: a WebSocket of new metric points, resumable by sequence.

The client sends one JSON message, ``{"runs": [...], "keys": [...], "after": SEQ}`` (empty lists: every
run / every key; ``after``: the last sequence it received, 0 for everything), and receives
``{"type": "points", "points": [[seq, run_id, key, step, timestamp, value], ...]}`` messages: first what
the store already has after ``after``, then new points as they are ingested, each point once, in
sequence order. When it is closed with code 1013 (it fell behind), it reconnects with its last sequence.
With a server token, the token is the ``token`` query parameter or the ``Authorization`` header.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tracelet_core.server.live import LiveFeed, Subscription, points_after

__all__ = ["router"]

router = APIRouter(tags=["stream"])
TRY_AGAIN_LATER = 1013
POLICY_VIOLATION = 1008


class StreamRequest(BaseModel):
    """What a subscriber asks for."""

    model_config = ConfigDict(extra="forbid", strict=True)

    runs: list[Annotated[str, Field(max_length=128)]] = Field(default_factory=list, max_length=1000)
    keys: list[Annotated[str, Field(max_length=500)]] = Field(default_factory=list, max_length=1000)
    after: int = Field(0, ge=0)


def _authorised(websocket: WebSocket) -> bool:
    expected: str | None = websocket.app.state.token
    if not expected:
        return True
    given = websocket.query_params.get("token") or websocket.headers.get("authorization", "").partition(" ")[2]
    return secrets.compare_digest(given.strip().encode(), expected.encode())


@router.websocket("/stream")
async def stream(websocket: WebSocket) -> None:
    """New metric points of the runs and keys asked for (see the module docstring)."""
    if not _authorised(websocket):
        await websocket.close(POLICY_VIOLATION, "this server needs a token")
        return
    await websocket.accept()
    try:
        request = StreamRequest.model_validate_json(await websocket.receive_text())
    except (ValidationError, ValueError) as exc:
        await websocket.close(POLICY_VIOLATION, f"bad subscription: {str(exc)[:80]}")
        return
    feed: LiveFeed = websocket.app.state.live
    subscription = feed.subscribe(request.runs, request.keys)
    try:
        await _serve(websocket, feed, subscription, request)
    except WebSocketDisconnect:
        pass
    finally:
        feed.unsubscribe(subscription)


async def _serve(websocket: WebSocket, feed: LiveFeed, subscription: Subscription, request: StreamRequest) -> None:
    sent = request.after
    while True:  # what the store has: subscribed first, so nothing falls between the two
        stored = await asyncio.to_thread(points_after, feed.store, sent, request.runs, request.keys)
        if not stored:
            break
        await websocket.send_json({"type": "points", "points": stored})
        sent = stored[-1][0]
    while True:
        points = await subscription.queue.get()
        if points is None:
            await websocket.close(TRY_AGAIN_LATER, "fell behind: reconnect with the last sequence received")
            return
        fresh = [point for point in points if point[0] > sent]
        if fresh:
            await websocket.send_json({"type": "points", "points": fresh})
            sent = fresh[-1][0]
