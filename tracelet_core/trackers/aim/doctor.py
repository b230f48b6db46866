"""``tracelet doctor`` for Aim: the repository can be written, or the Aim server answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tracelet_core.trackers.doctor import Check, tcp_problem, writable

__all__ = ["check"]


def check(options: dict[str, Any]) -> Check:
    """Whether the repository can be written (or the Aim server answers)."""
    repo = options.get("repo")
    if repo and str(repo).startswith("aim://"):
        parts = urlsplit(str(repo))
        problem = tcp_problem(parts.hostname or "", parts.port or 53800)
        if problem:
            return Check(
                "aim",
                "error",
                f"Aim server {repo} does not answer ({problem})",
                "Start it (`aim server`) or set TRACELET_AIM__REPO to a local path.",
            )
        return Check("aim", "ok", f"Aim server {repo} answers")
    fix: str | None
    path = Path(repo).expanduser() if repo else _default_aim_repo()
    path = path.parent if path.name == ".aim" else path
    exists = (path / ".aim").is_dir()
    ok, why = writable(path / ".aim" if exists else path)
    summary = f"repository {path} ({why})" if exists else f"a new repository will be created in {path} ({why})"
    fix = None if ok else "Set TRACELET_AIM__REPO to a writable directory."
    return Check("aim", "ok" if ok else "error", summary, fix, {"repo": str(path)})


def _default_aim_repo() -> Path:
    """Aim's default: the nearest ``.aim`` above the working directory, else the working directory."""
    here = Path.cwd()
    return next((p for p in (here, *here.parents) if (p / ".aim").is_dir()), here)
