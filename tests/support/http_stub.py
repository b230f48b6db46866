"""A tiny HTTP server on 127.0.0.1 that answers every request from a function: a tracker's server
refusing a call (401, 403, 429, 503...) without starting the real one.

The SDK under test stays real: it sends its request, reads the status and body, and raises what it
raises for them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (method, path, body) -> (status, body); a dict or list body is sent as JSON, a str as text.
Responder = Callable[[str, str, bytes], tuple[int, Any]]


def always(status: int, body: Any) -> Responder:
    """A responder giving the same answer to every request."""
    return lambda method, path, data: (status, body)


@contextmanager
def http_stub(responder: Responder) -> Iterator[str]:
    """Serve ``responder`` on a free port of 127.0.0.1 while the block runs; yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, body = responder(self.command, self.path, data)
            is_json = not isinstance(body, str)
            payload = (json.dumps(body) if is_json else body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if is_json else "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:  # quiet: pytest shows what matters
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (bound, then released): connections are refused at once."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
