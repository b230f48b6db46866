"""Waiting, at a run's start, for each tracker to open its run: ``on_tracker_error="raise"``.

By default a tracker that cannot be used (a wrong URI, no API key, a server that is down) gives one
warning and training goes on, its events waiting in the journal for ``tracelet sync``. With
``on_tracker_error="raise"`` the run's start waits until every tracker of the session has opened
its run (acknowledged the session's start event), and raises
:class:`~tracelet_core.errors.TrackerConfigurationError` for the first one that cannot: refused
(misconfigured, SDK missing), unreachable for :data:`UNREACHABLE_GRACE` seconds of retries, or not
open after :data:`OPEN_TIMEOUT` seconds (an SDK import and a new store's migrations take seconds on
a busy machine, so this bound is generous).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tracelet_core.errors import TrackerConfigurationError
from tracelet_core.pipeline.contract import BackendDelivery, DeliveryState
from tracelet_core.pipeline.credentials import strip_credentials
from tracelet_core.pipeline.journal import Journal

__all__ = ["OPEN_TIMEOUT", "UNREACHABLE_GRACE", "tracker_location", "wait_for_trackers"]

OPEN_TIMEOUT = 60.0
UNREACHABLE_GRACE = 3.0
_LOOK_EVERY = 0.05
# Option names that say where a tracker's data goes (tracking_uri, base_url, repo, dir, api_host...).
_WHERE = re.compile(r"(uri|url|host|server|repo|dir)$")


def tracker_location(name: str, options: Mapping[str, Any]) -> str:
    """Where a tracker points, from its options and the SDK variables that stand in for unset ones,
    without credentials: ``tracking_uri=http://host:5000``; empty when nothing says.

    Example:
        >>> tracker_location("mlflow", {"tracking_uri": "http://user:pw@127.0.0.1:9", "http_timeout": 30})
        'tracking_uri=http://127.0.0.1:9'
    """
    from tracelet_core.trackers import all_trackers

    tracker = all_trackers().get(name)
    variables = dict(tracker.sdk_variables) if tracker is not None else {}
    parts = []
    for key in dict.fromkeys([*options, *variables]):
        if not _WHERE.search(key):
            continue
        value = options.get(key)
        if value in (None, "") and key in variables:
            value = os.environ.get(variables[key])
        if value not in (None, ""):
            parts.append(f"{key}={strip_credentials(str(value))}")
    return ", ".join(parts)


def wait_for_trackers(
    journal_path: Path,
    backends: list[str],
    options: Mapping[str, Mapping[str, Any]],
    start_seq: int,
    *,
    timeout: float = OPEN_TIMEOUT,
    grace: float = UNREACHABLE_GRACE,
) -> None:
    """Return once every backend has acknowledged the start event ``start_seq``.

    Args:
        journal_path: the run's journal.
        backends: the session's backends.
        options: their options (for the error message: where each points).
        start_seq: the sequence number of the session's start event.
        timeout: seconds to wait in all.
        grace: seconds a tracker may fail with transient errors (unreachable) before it counts as an error.

    Raises:
        TrackerConfigurationError: a backend refused to open, stayed unreachable for ``grace`` seconds,
            or did not open within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    failing_since: dict[str, float] = {}
    waiting = set(backends)
    with Journal(journal_path) as journal:
        while waiting:
            now = time.monotonic()
            for name, state in journal.deliveries().items():
                if name not in waiting:
                    continue
                if state.acked_seq >= start_seq:
                    waiting.discard(name)
                elif state.state.stopped:
                    raise _error(name, options, state, "cannot be used as configured")
                elif state.state is DeliveryState.RETRYING and now - failing_since.setdefault(name, now) >= grace:
                    raise _error(name, options, state, f"cannot be reached (still failing after {grace:g} s)")
            if waiting and now >= deadline:
                name = sorted(waiting)[0]
                raise _error(name, options, journal.deliveries()[name], f"did not open its run within {timeout:g} s")
            if waiting:
                time.sleep(_LOOK_EVERY)


def _error(
    name: str, options: Mapping[str, Mapping[str, Any]], state: BackendDelivery, what: str
) -> TrackerConfigurationError:
    where = tracker_location(name, options.get(name, {}))
    place = f" ({where})" if where else ""
    why = f": {state.error}" if state.error else ""
    return TrackerConfigurationError(
        f"Tracker {name}{place} {what}{why}. With on_tracker_error='raise' the run stops before training; "
        "fix the tracker's setting, or use on_tracker_error='warn' (TRACELET_ON_TRACKER_ERROR=warn) to train on "
        "and deliver later with `tracelet sync`."
    )
