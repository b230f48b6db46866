"""Running the server: uvicorn on ``host:port`` serving :func:`~tracelet_core.server.app.create_app`."""

from __future__ import annotations

from pathlib import Path

from tracelet_core.collectors.git import strip_credentials
from tracelet_core.server.app import create_app
from tracelet_core.server.limits import DEFAULT_MAX_BODY

__all__ = ["serve"]


def serve(
    store: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    log_level: str = "warning",
    follow: Path | None = None,
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM stop it gracefully: requests in flight are answered).

    Raises:
        ConfigurationError: a bad store URL.
    """
    import uvicorn

    app = create_app(store, token=token, max_body=max_body, follow=follow)
    print(f"Tracelet server at http://{host}:{port}  (store: {strip_credentials(store)})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, server_header=False)
