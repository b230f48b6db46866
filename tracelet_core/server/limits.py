"""Request bodies: gzip-compressed bodies are inflated, and every body is capped after decompression.

An ASGI middleware, below the routes, so a body is never held in memory beyond the cap: the count
runs on the decompressed bytes as they stream in (a small gzip bomb is refused as soon as its output
passes the cap). Refusals are problem+json: 413 over the cap, 415 for an encoding other than gzip or
identity, 400 for a damaged gzip stream.
"""

from __future__ import annotations

import zlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracelet_core.server.errors import problem_response

__all__ = ["DEFAULT_MAX_BODY", "BodyLimit"]

DEFAULT_MAX_BODY = 64 * 1024 * 1024


class _Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class BodyLimit:
    """Inflate ``Content-Encoding: gzip`` request bodies and refuse bodies over ``max_bytes`` (decompressed).

    Args:
        app: the ASGI app to guard.
        max_bytes: the most bytes a body may have once decompressed.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", ""):
            await problem_response(415, f"Content-Encoding {encoding!r} is not accepted; send gzip or none.")(
                scope, receive, send
            )
            return
        try:
            body = await self._read(receive, gzip=encoding == "gzip")
        except _Refused as refused:
            await problem_response(refused.status, refused.detail)(scope, receive, send)
            return
        await self.app(_without_encoding(scope, len(body)), _replay(body, receive), send)

    async def _read(self, receive: Receive, *, gzip: bool) -> bytes:
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        parts: list[bytes] = []
        size = received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Refused(400, "The client went away before sending the whole body.")
            chunk: bytes = message.get("body", b"")
            more = bool(message.get("more_body"))
            received += len(chunk)
            if inflate is not None:
                try:
                    # max_length bounds what one chunk may inflate to: a bomb stops at the cap.
                    chunk = inflate.decompress(chunk, self.max_bytes - size + 1)
                    if inflate.unconsumed_tail:
                        chunk += b"x"  # more output than the cap allows: refused below
                except zlib.error as exc:
                    raise _Refused(400, f"The gzip body is damaged ({exc}).") from exc
            size += len(chunk)
            if size > self.max_bytes:
                raise _Refused(413, f"The body is over the server's limit of {self.max_bytes:,} bytes (decompressed).")
            parts.append(chunk)
        if inflate is not None and received and not inflate.eof:
            raise _Refused(400, "The gzip body is truncated.")
        return b"".join(parts)


def _without_encoding(scope: Scope, length: int) -> Scope:
    kept = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in (b"content-encoding", b"content-length")]
    return {**scope, "headers": [*kept, (b"content-length", str(length).encode())]}


def _replay(body: bytes, original: Receive) -> Receive:
    """The body already read, then the client's own messages (a disconnect, when it comes)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await original()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
