"""``tracelet doctor`` for the Tracelet server: it answers, and takes the token given."""

from __future__ import annotations

import os
from typing import Any

from tracelet_core.client import split_token
from tracelet_core.trackers.doctor import Check, http_status
from tracelet_core.trackers.tracelet.options import DEFAULT_URL, TOKEN_VARIABLE

__all__ = ["check"]


def check(options: dict[str, Any]) -> Check:
    """Whether the server answers its health check and accepts the token (or needs none)."""
    url, url_token = split_token(str(options.get("url") or DEFAULT_URL))
    token = options.get("token") or os.environ.get(TOKEN_VARIABLE) or url_token
    details: dict[str, Any] = {"url": url, "token": "set" if token else "none"}
    status, why = http_status(f"{url}/api/v1/health")
    if status != 200:
        fix = (
            f"Start it (`tracelet server --port {url.rsplit(':', 1)[-1]}`) or point TRACELET_TRACELET__URL at one "
            "that runs. Runs meanwhile stay in the journal; `tracelet sync` delivers them later."
        )
        return Check("tracelet", "error", f"Tracelet server {url} does not answer ({why})", fix, details)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, why = http_status(f"{url}/api/v1/experiments", headers)
    if status in (401, 403):
        fix = "Set TRACELET_TRACELET__TOKEN to the server's token (`tracelet server --token`)."
        return Check(
            "tracelet", "error", f"{url} refuses {'the token given' if token else 'access'} ({why})", fix, details
        )
    if status != 200:
        return Check("tracelet", "error", f"{url} answers its API with {why}", None, details)
    return Check("tracelet", "ok", f"{url} answers", details=details)
