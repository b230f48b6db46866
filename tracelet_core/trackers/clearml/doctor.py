"""``tracelet doctor`` for ClearML: offline, whether sessions can be written; online, a server that answers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tracelet_core.trackers.doctor import Check, http_status, mask, writable

__all__ = ["check"]


def check(options: dict[str, Any]) -> Check:
    """Offline: whether sessions can be written; online: a configured server that answers."""
    offline = options.get("offline")
    if offline is None:
        offline = os.environ.get("CLEARML_OFFLINE_MODE", "").lower() in ("1", "true", "yes", "on")
    if offline:
        cache = Path(os.environ.get("CLEARML_CACHE_DIR") or Path.home() / ".clearml" / "cache")
        ok, why = writable(cache)
        fix = None if ok else "Set CLEARML_CACHE_DIR to a writable directory."
        summary = f"offline: sessions under {cache / 'offline'} ({why}); import them later into a server"
        return Check("clearml", "ok" if ok else "error", summary, fix, {"offline": True})
    host = os.environ.get("CLEARML_API_HOST")
    config = Path(os.environ.get("CLEARML_CONFIG_FILE") or Path.home() / "clearml.conf")
    if host:
        status, why = http_status(f"{host.rstrip('/')}/debug.ping")
        if status == 200:
            return Check("clearml", "ok", f"server {mask('host', host)} answers", details={"offline": False})
        fix = "Start the ClearML server, fix CLEARML_API_HOST, or record offline with TRACELET_CLEARML__OFFLINE=true."
        return Check("clearml", "error", f"server {mask('host', host)} does not answer ({why})", fix)
    if config.is_file():
        return Check("clearml", "ok", f"online, configured in {config} (server not probed)", details={"offline": False})
    fix = (
        "Run `clearml-init` (or set CLEARML_API_HOST and its keys), or record offline with "
        "TRACELET_CLEARML__OFFLINE=true."
    )
    return Check("clearml", "error", "online, but no ClearML server is configured", fix, {"offline": False})
