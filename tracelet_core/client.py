"""A Python client of the Tracelet server's REST API (``tracelet server``), on httpx.

Example:
    >>> client = TraceletClient("http://127.0.0.1:8765")  # doctest: +SKIP
    >>> [run["id"] for run in client.search_runs("status=FINISHED param.lr>0.01")]  # doctest: +SKIP
    ['3f2a...', ...]
    >>> client.history(run_id, "train/loss", points=2000)["points"][:2]  # doctest: +SKIP
    [[0, 1760000000.1, 2.3], [5, 1760000000.6, 1.9]]

Errors the server answers (problem+json) raise :class:`ServerError` with the status and the problem;
a server that cannot be reached raises httpx's own ``TransportError``.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from tracelet_core.errors import TraceletError

if TYPE_CHECKING:
    import httpx

__all__ = ["ServerError", "TraceletClient", "json_value", "split_token"]

API = "/api/v1"
COMPRESS_OVER = 1024  # bytes: smaller bodies are sent as they are


class ServerError(TraceletError):
    """The server refused a request or failed to answer it.

    Attributes:
        status: the HTTP status; problem: the problem+json body (``detail`` says what was wrong).
    """

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status, self.problem = status, problem
        super().__init__(f"Tracelet server answered {status}: {problem.get('detail') or problem.get('title')}")


def json_value(value: float) -> float | str:
    """A metric value as the API takes it (NaN and ±infinity as strings).

    Example:
        >>> json_value(0.5), json_value(float("nan")), json_value(float("-inf"))
        (0.5, 'NaN', '-Infinity')
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def split_token(url: str) -> tuple[str, str | None]:
    """``http://:TOKEN@host`` (how a token travels inside a URL setting) → the bare URL and the token."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url.rstrip("/"), None
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc)).rstrip("/"), parts.password or parts.username


class TraceletClient:
    """The REST API of one Tracelet server.

    Args:
        url: the server's base URL (``http://127.0.0.1:8765``); a token may ride in it (``http://:TOKEN@host``).
        token: the server token (``tracelet server --token``), if it has one.
        timeout: seconds per request.
        transport: an httpx transport (tests: ``httpx.ASGITransport(app)``).
    """

    def __init__(
        self, url: str, token: str | None = None, timeout: float = 30.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        import httpx

        self.url, url_token = split_token(url)
        token = token or url_token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> TraceletClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        content, headers = None, {}
        if body is not None:
            content = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
            if len(content) > COMPRESS_OVER:
                content, headers["Content-Encoding"] = gzip.compress(content, compresslevel=1), "gzip"
        response = self._http.request(method, API + path, content=content, headers=headers, params=params)
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text[:500]}
            raise ServerError(response.status_code, problem if isinstance(problem, dict) else {"detail": problem})
        return response.json()

    def health(self) -> dict[str, Any]:
        """``{"status": "ok", ...}`` from a server that answers."""
        result: dict[str, Any] = self._call("GET", "/health")
        return result

    def open_run(self, run_id: str, run: Mapping[str, Any]) -> dict[str, Any]:
        """Create or update a run (``experiment``, ``start_time``, ``name``, ``tags``, ``host``...)."""
        result: dict[str, Any] = self._call("PUT", f"/runs/{run_id}", dict(run))
        return result

    def send_batch(
        self,
        run_id: str,
        metrics: list[tuple[str, int | None, float, float]],
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        seq: int = -1,
    ) -> dict[str, Any]:
        """Ingest ``(key, step, timestamp, value)`` points, params and tags once (``seq``: the journal
        sequence of the batch's first event, -1 if none); a repeat answers ``duplicate: true``."""
        body = {
            "seq": seq,
            "metrics": [{"key": k, "step": s, "ts": t, "value": json_value(v)} for k, s, t, v in metrics],
            "params": dict(params or {}),
            "tags": dict(tags or {}),
        }
        result: dict[str, Any] = self._call("POST", f"/runs/{run_id}/batches", body)
        return result

    def set_status(self, run_id: str, status: str, end_time: float | None = None, **extra: Any) -> dict[str, Any]:
        """End (or re-open) a run."""
        result: dict[str, Any] = self._call(
            "POST", f"/runs/{run_id}/status", {"status": status, "end_time": end_time, **extra}
        )
        return result

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A run with its params, tags and each metric's last point."""
        result: dict[str, Any] = self._call("GET", f"/runs/{run_id}")
        return result

    def search_runs(
        self, filter: str = "", *, sort: str = "start_time", order: str = "desc", deleted: bool = False, page: int = 200
    ) -> Iterator[dict[str, Any]]:
        """Every run matching ``filter`` (the language of ``tracelet runs``), page after page."""
        cursor = None
        while True:
            params: dict[str, Any] = {"filter": filter, "sort": sort, "order": order, "limit": page, "deleted": deleted}
            if cursor:
                params["cursor"] = cursor
            answer = self._call("GET", "/runs", params=params)
            yield from answer["runs"]
            cursor = answer["next_cursor"]
            if not cursor:
                return

    def metrics(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Each metric of a run: its last point and point count."""
        result: dict[str, dict[str, Any]] = self._call("GET", f"/runs/{run_id}/metrics")["metrics"]
        return result

    def history(self, run_id: str, key: str, points: int | None = None) -> dict[str, Any]:
        """A metric's ``[step, timestamp, value]`` points, every one or at most ``points`` (min/max per bucket)."""
        params: dict[str, Any] = {"key": key}
        if points is not None:
            params["points"] = points
        result: dict[str, Any] = self._call("GET", f"/runs/{run_id}/history", params=params)
        return result

    def edit_run(self, run_id: str, **changes: Any) -> dict[str, Any]:
        """Rename a run (``name=``), set or remove (None) ``params=`` and ``tags=``."""
        result: dict[str, Any] = self._call("PATCH", f"/runs/{run_id}", changes)
        return result

    def delete_run(self, run_id: str) -> dict[str, Any]:
        """Soft-delete a run."""
        result: dict[str, Any] = self._call("DELETE", f"/runs/{run_id}")
        return result

    def restore_run(self, run_id: str) -> dict[str, Any]:
        """Restore a soft-deleted run."""
        result: dict[str, Any] = self._call("POST", f"/runs/{run_id}/restore")
        return result

    def experiments(self) -> list[dict[str, Any]]:
        """Every experiment with its number of runs."""
        result: list[dict[str, Any]] = self._call("GET", "/experiments")["experiments"]
        return result
