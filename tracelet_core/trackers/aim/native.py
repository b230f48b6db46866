"""What Aim's SDK has no public call for: a run's start and end time, and a lasting artifact path.

``tracelet migrate`` copies runs that ended long ago; Aim stamps a run with the time it is created and
closed. The start time is the run's row in Aim's SQLite index (``created_at``, which Aim's own
``Repo.copy_runs`` sets the same way); the end time is what Aim writes when it closes the run, so it
is set by the run's own clean-up. Both are best effort: an Aim version without these internals keeps
its own times, with one warning.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from tracelet_core.errors import warn_once

__all__ = ["lasting_artifact", "set_creation_time", "set_end_time"]


def set_creation_time(aim_run: Any, when: float) -> None:
    """Make ``when`` (seconds since the epoch) the creation time of a new run of a local repository."""
    if aim_run.repo.is_remote_repo:
        return
    try:
        from aim.storage.structured.sql_engine.entities import session_commit_or_flush

        props = aim_run.props
        props._model.created_at = datetime.datetime.fromtimestamp(when, datetime.timezone.utc).replace(tzinfo=None)
        session_commit_or_flush(props._session)
    except (AttributeError, ImportError) as exc:
        warn_once("aim-start-time", f"This Aim version does not let Tracelet set a run's start time ({exc}).")


def set_end_time(aim_run: Any, when: float) -> None:
    """Make ``when`` the end time Aim records when ``aim_run`` is closed (instead of the time of closing)."""
    resources = getattr(aim_run, "_resources", None)
    if resources is None or not hasattr(resources, "set_run_end_time"):
        warn_once("aim-end-time", "This Aim version does not let Tracelet set a run's end time.")
        return

    def keep_end_time() -> None:
        resources.meta_run_tree["end_time"] = when

    resources.set_run_end_time = keep_end_time


def lasting_artifact(aim_run: Any, name: str) -> None:
    """Point the artifact ``name`` at its stored copy, not at the local file it was uploaded from.

    Aim records the path the file was uploaded from, which for Tracelet is a temporary copy (the run's
    staged file, or ``tracelet migrate``'s scratch folder). With ``file://`` storage the stored copy
    is a local file that lasts; other storage keeps Aim's record (its ``uri`` is what lasts there).
    """
    from aim.sdk.objects.artifact import Artifact

    base = aim_run.artifacts_uri
    parsed = urlparse(os.path.join(base, name))
    lasting = Path(unquote(parsed.path))
    if parsed.scheme == "file" and lasting.is_file():
        aim_run.meta_run_tree.subtree("artifacts")[name] = Artifact(str(lasting), uri=base, name=name)
