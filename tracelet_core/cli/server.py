"""``tracelet server``: Tracelet's own server (REST API under /api/v1, docs at /docs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracelet_core.cli._app import app, user_errors

__all__ = ["server"]


@app.command(
    short_help="Run Tracelet's server: a REST API over runs in SQLite or PostgreSQL.",
    epilog="Example: [bold]tracelet server --port 8765[/]  ·  "
    "[bold]tracelet server --store postgresql+psycopg://tracelet@db/tracelet --host 0.0.0.0 --token $TOKEN[/]",
)
def server(
    store: Annotated[
        str,
        typer.Option(envvar="TRACELET_SERVER_STORE", help="sqlite:///PATH or postgresql+psycopg://USER:PW@HOST/DB."),
    ] = "sqlite:///tracelet-server.db",
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(envvar="TRACELET_SERVER_TOKEN", help="Require 'Authorization: Bearer TOKEN' on the API."),
    ] = None,
    max_body: Annotated[int, typer.Option(help="Largest request body in bytes, counted after decompression.")] = (
        64 * 1024 * 1024
    ),
    follow: Annotated[
        Path | None,
        typer.Option(help="Also ingest the runs in this journal directory (e.g. .tracelet) as they are written."),
    ] = None,
) -> None:
    """Serve the REST API (/api/v1, docs at /docs) over runs stored in SQLite (default) or PostgreSQL.

    Runs reach it through the `tracelet` tracker: TRACELET_BACKENDS=tracelet,mlflow and
    TRACELET_TRACELET__URL=http://HOST:PORT. The schema is created or upgraded at start.
    """
    from tracelet_core.server.serve import serve

    with user_errors():
        serve(store, host=host, port=port, token=token, max_body=max_body, follow=follow)
