"""``tracelet doctor`` for MLflow: the store answers (a server) or can be written (a file), credentials and all."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from tracelet_core.collectors.git import strip_credentials
from tracelet_core.trackers.doctor import Check, http_status, mask, tcp_problem, writable

__all__ = ["check"]


def check(options: dict[str, Any]) -> Check:
    """Whether the tracking store answers (a server) or can be written (a file), and takes the credentials given."""
    uri = options.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        import mlflow

        uri = mlflow.get_tracking_uri()
    uri = str(uri)
    shown = mask("tracking_uri", uri)
    details: dict[str, Any] = {"tracking_uri": shown}
    fix: str | None
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        # The URL called has no credentials (urllib cannot take them there); they go in a header, as MLflow sends them.
        base = strip_credentials(uri).rstrip("/")
        auth = _mlflow_auth(parts)
        status, why = http_status(f"{base}/health", auth)
        if status != 200 and status is not None:
            status, why = http_status(f"{base}/api/2.0/mlflow/experiments/search?max_results=1", auth)
        if status == 200:
            return Check("mlflow", "ok", f"{shown} answers", details=details)
        if status in (401, 403):
            if auth:
                fix = (
                    "Check the user name and password (in the tracking URI, or MLFLOW_TRACKING_USERNAME and "
                    "MLFLOW_TRACKING_PASSWORD) or MLFLOW_TRACKING_TOKEN."
                )
                return Check("mlflow", "error", f"{shown} refuses the credentials given ({why})", fix, details)
            fix = "Set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) for it."
            return Check("mlflow", "error", f"{shown} refuses access ({why})", fix, details)
        fix = (
            f"Start the server (e.g. `mlflow server --host {parts.hostname} --port {parts.port or 5000}`) or point "
            "TRACELET_MLFLOW__TRACKING_URI (or MLFLOW_TRACKING_URI) at one that runs. Runs meanwhile stay in the "
            "journal; `tracelet sync` delivers them later."
        )
        return Check("mlflow", "error", f"MLflow tracking server {shown} does not answer ({why})", fix, details)
    if parts.scheme == "databricks":
        return Check("mlflow", "info", f"{shown} (Databricks: not probed)", details=details)
    if parts.scheme in ("sqlite", "file", ""):
        path = Path(uri.removeprefix("sqlite:///").removeprefix("file://"))
        folder = path.parent if parts.scheme == "sqlite" else path
        ok, why = writable(folder)
        if ok and parts.scheme == "sqlite" and path.exists() and not os.access(path, os.W_OK):
            ok, why = False, f"{path} is read-only"
        fix = None if ok else "Point TRACELET_MLFLOW__TRACKING_URI at a writable location."
        return Check("mlflow", "ok" if ok else "error", f"{shown} ({why})", fix, details)
    host, port = parts.hostname, parts.port
    if host and port:  # a database: is its port open?
        problem = tcp_problem(host, port)
        if problem:
            return Check(
                "mlflow",
                "error",
                f"{shown}: {host}:{port} does not answer ({problem})",
                "Start the database or fix the tracking URI.",
                details,
            )
    return Check("mlflow", "ok", f"{shown} (reachable)" if host and port else shown, details=details)


def _mlflow_auth(parts: SplitResult) -> dict[str, str]:
    """The Authorization header MLflow's client would send: from MLFLOW_TRACKING_TOKEN, else
    MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, else the tracking URI's (percent-encoded) ``user:password@``.
    """
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if not (user and password) and parts.username is not None:
        user, password = unquote(parts.username), unquote(parts.password or "")
    if user:
        credentials = f"{user}:{password or ''}".encode()
        return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}
    return {}
