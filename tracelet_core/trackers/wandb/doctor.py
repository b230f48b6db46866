"""``tracelet doctor`` for W&B: offline, the run files can be written; online, an API key and a host that answers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tracelet_core.trackers.doctor import Check, tcp_problem, writable

__all__ = ["check"]


def check(options: dict[str, Any]) -> Check:
    """Offline: whether the run files can be written; online: an API key, and the host answers."""
    mode = options.get("mode") or os.environ.get("WANDB_MODE") or "online"
    details: dict[str, Any] = {"mode": mode}
    if mode == "disabled":
        return Check("wandb", "warn", "mode disabled: W&B records nothing", "Unset WANDB_MODE to record.", details)
    if mode in ("offline", "dryrun"):
        folder = Path(options.get("dir") or os.environ.get("WANDB_DIR") or ".")
        ok, why = writable(folder)
        fix = None if ok else "Set TRACELET_WANDB__DIR (or WANDB_DIR) to a writable directory."
        summary = f"offline: run files under {folder.absolute() / 'wandb'} ({why}); upload later with `wandb sync`"
        return Check("wandb", "ok" if ok else "error", summary, fix, details)
    base = os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    host = urlsplit(base).hostname or "api.wandb.ai"
    if not (os.environ.get("WANDB_API_KEY") or _netrc_has(host)):
        fix = (
            "Run `wandb login` (or set WANDB_API_KEY), or record offline with TRACELET_WANDB__MODE=offline and "
            "upload later with `wandb sync`."
        )
        return Check("wandb", "error", f"online, but no API key for {host}", fix, details)
    problem = tcp_problem(host, urlsplit(base).port or (443 if base.startswith("https") else 80))
    if problem:
        fix = "Check the network or proxy, or record offline with TRACELET_WANDB__MODE=offline."
        return Check("wandb", "error", f"online, {host} does not answer ({problem})", fix, details)
    return Check("wandb", "ok", f"online ({host} answers, API key set)", details=details)


def _netrc_has(host: str) -> bool:
    import netrc

    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False
