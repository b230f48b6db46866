"""The server token: with one set, every ``/api/v1`` call needs ``Authorization: Bearer <token>``."""

from __future__ import annotations

import secrets

from fastapi import Request

from tracelet_core.server.errors import Problem

__all__ = ["require_token"]


def require_token(request: Request) -> None:
    """A FastAPI dependency: refuse the call (401, problem+json) without the server's token.

    Raises:
        Problem: no token, or another one.
    """
    expected: str | None = request.app.state.token
    if not expected:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), expected.encode()):
        raise Problem(
            401, "This server needs a token: send 'Authorization: Bearer <token>'.", {"WWW-Authenticate": "Bearer"}
        )
