"""Errors as ``application/problem+json`` (RFC 9457), for every 4xx and 5xx the server answers.

A problem has ``type`` (``about:blank`` unless a more precise page exists), ``title`` (the status's
phrase), ``status``, ``detail`` (what was wrong and what to do) and, for validation errors, ``errors``:
each bad field's location and message (never the input value: it may be large or secret).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

__all__ = ["PROBLEM_JSON", "Problem", "install_error_handlers", "problem_response"]

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("tracelet.server")


class Problem(Exception):
    """Raise to answer a problem: ``raise Problem(404, "No run 'abc'")``."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers, self.extra = status, detail, headers, extra


def problem_response(status: int, detail: str, headers: Mapping[str, str] | None = None, **extra: Any) -> JSONResponse:
    """A ``problem+json`` response.

    Example:
        >>> problem_response(404, "No run 'x'").body
        b'{"type":"about:blank","title":"Not Found","status":404,"detail":"No run \\'x\\'"}'
    """
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", ""))}
        for error in exc.errors()
    ]


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    malformed = any(error["msg"].startswith("JSON decode error") for error in errors)
    detail = "The body is not valid JSON." if malformed else "The request does not have the expected shape."
    return problem_response(400 if malformed else 422, detail, errors=errors[:50])


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
    return problem_response(exc.status_code, detail, headers=exc.headers)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.detail, exc.headers, **exc.extra)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path)
    return problem_response(500, "The server failed to answer this request; its log has the details.")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error the app raises as problem+json."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(Exception, _on_unexpected)
