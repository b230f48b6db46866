"""The Tracelet server's ASGI application: ``create_app(store_url)``, served by uvicorn.

Example:
    >>> from fastapi.testclient import TestClient
    >>> import tempfile
    >>> app = create_app(f"sqlite:///{tempfile.mkdtemp()}/server.db")
    >>> with TestClient(app) as client:
    ...     client.get("/api/v1/health").json()["status"]
    'ok'
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from tracelet_core.server.api import docs, experiments, metrics, runs, stream
from tracelet_core.server.auth.token import require_token
from tracelet_core.server.errors import install_error_handlers
from tracelet_core.server.follow import JournalFollower
from tracelet_core.server.limits import DEFAULT_MAX_BODY, BodyLimit
from tracelet_core.server.live import LiveFeed
from tracelet_core.server.store.database import open_store

__all__ = ["DEFAULT_STORE", "create_app"]

DEFAULT_STORE = "sqlite:///tracelet-server.db"


def create_app(
    store_url: str = DEFAULT_STORE,
    *,
    token: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    follow: Path | None = None,
) -> FastAPI:
    """The server for the store at ``store_url``, migrated when the app starts.

    Args:
        store_url: ``sqlite:///PATH`` or ``postgresql+psycopg://USER:PASSWORD@HOST/DB``.
        token: when set, every ``/api/v1`` call needs ``Authorization: Bearer <token>``.
        max_body: the most bytes a request body may have, counted after decompression.
        follow: a journal directory whose runs are ingested as they are written (see :mod:`.follow`).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = open_store(store_url)
        app.state.live = LiveFeed(app.state.store)
        await app.state.live.start()
        follower = JournalFollower(app.state.store, follow) if follow is not None else None
        if follower is not None:
            follower.start()
        try:
            yield
        finally:
            if follower is not None:
                follower.stop()
                await asyncio.to_thread(follower.join, 10)
            await app.state.live.stop()
            app.state.store.close()

    app = FastAPI(
        title="Tracelet server",
        version="1",
        lifespan=lifespan,
        openapi_url=docs.OPENAPI_URL,
        docs_url=None,
        redoc_url=None,
    )
    app.state.token = token
    install_error_handlers(app)
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])
    for module in (runs, metrics, experiments):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(stream.router, prefix="/api/v1")  # a WebSocket: it checks the token itself
    app.add_api_route("/api/v1/health", _health, methods=["GET"], tags=["health"], summary="Health")
    docs.install_docs(app)
    app.add_middleware(BodyLimit, max_bytes=max_body)
    return app


def _health() -> dict[str, Any]:
    """Whether the server answers (no token needed: load balancers and ``tracelet doctor`` call it)."""
    return {"status": "ok", "api": "v1"}
