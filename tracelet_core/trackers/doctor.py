"""What ``tracelet doctor`` says about one tracker: a :class:`Check`, and the probes tracker checks share.

Each tracker's own check lives in its folder (``trackers/<name>/doctor.py``: ``check(options) -> Check``)
and is named by its :class:`~tracelet_core.trackers.descriptor.Tracker`. Network probes are short
(a few seconds) and only touch the configured stores.
"""

from __future__ import annotations

import socket
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from tracelet_core.collectors.environment import MASK, looks_secret
from tracelet_core.collectors.git import strip_credentials

__all__ = ["TIMEOUT", "Check", "http_status", "mask", "sdk_version", "tcp_problem", "writable"]

TIMEOUT = 3.0
Level = Literal["ok", "info", "warn", "error"]


@dataclass
class Check:
    """One finding. ``error`` means a configured piece cannot work; ``fix`` says what to do."""

    name: str
    level: Level
    summary: str
    fix: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def mask(name: str, value: Any) -> str:
    """A value as doctor shows it: masked when its name looks secret, URL credentials removed.

    Example:
        >>> mask("api_key", "abc"), mask("tracking_uri", "https://u:p@host/x"), mask("experiment", None)
        ('***', 'https://host/x', '-')
    """
    if value is None:
        return "-"
    text = str(value)
    return MASK if looks_secret(name) and text else strip_credentials(text)


def writable(path: Path) -> tuple[bool, str]:
    """Whether files can be created in ``path`` (or, if it does not exist yet, in its nearest existing parent)."""
    target = path.expanduser().absolute()
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return False, f"{existing} is not a directory"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".tracelet-doctor-"):
            pass
    except OSError as exc:
        return False, f"{existing} is not writable ({exc.strerror or exc})"
    return True, f"{target} writable" if existing == target else f"{target} will be created"


def http_status(url: str, headers: dict[str, str] | None = None) -> tuple[int | None, str]:
    """The HTTP status of ``GET url`` (None when nothing answers), and a few words on it."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return int(response.status), "answers"
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, str(reason)


def tcp_problem(host: str, port: int) -> str | None:
    """None when ``host:port`` accepts a connection, else why not."""
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT):
            return None
    except OSError as exc:
        return str(exc)


def sdk_version(module: str | None) -> str | None:
    """The installed version of an SDK, by its import name (None when it is not installed)."""
    if module is None:
        return None
    try:
        return metadata.version(module)  # the usual case: the distribution is named after the module
    except metadata.PackageNotFoundError:
        pass
    for dist in metadata.packages_distributions().get(module, []):  # slow: reads every installed package
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None
