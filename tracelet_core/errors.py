"""Tracelet's exception and warning hierarchy.

Every error Tracelet raises on purpose is a :class:`TraceletError`, so a caller can catch them all
in one place. Messages say what was wrong, the offending value, and what to do.
"""

from __future__ import annotations

import enum
import logging
import threading
import warnings

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "ConfigurationError",
    "ErrorKind",
    "JournalError",
    "PermanentDeliveryError",
    "RunInUseError",
    "TraceletError",
    "TraceletWarning",
    "TrackerConfigurationError",
    "warn_once",
]


class TraceletError(Exception):
    """Base class of every error Tracelet raises."""


class ConfigurationError(TraceletError, ValueError):
    """A setting has a value Tracelet cannot use; raised at start, never mid-training."""


class BackendError(TraceletError):
    """A tracker backend failed in a way retrying will not fix."""


class BackendUnavailableError(BackendError):
    """A backend's SDK is not installed; the message names the ``pip install`` command."""


class JournalError(TraceletError):
    """The run's journal cannot be opened or has an unexpected layout."""


class RunInUseError(TraceletError):
    """Another live process records into this run id; two writers would merge two runs into one."""


class ErrorKind(enum.Enum):
    """What a failed tracker call means for the delivery (each backend classifies its SDK's errors).

    * ``TRANSIENT``: the tracker may take it later (network, timeout, a locked store, 5xx): retry with backoff.
    * ``PERMANENT``: this event can never be written (the tracker rejects its content): it is set
      aside with the reason (a dead letter, shown by ``tracelet show``) and delivery goes on with the rest.
    * ``CONFIGURATION``: the tracker cannot be used as configured (no API key, no permission, an
      unknown project): the user is told at once, and the run's events wait in the journal for
      ``tracelet sync`` once the setting is fixed.
    """

    TRANSIENT = "transient"
    PERMANENT = "permanent"
    CONFIGURATION = "configuration"


class PermanentDeliveryError(BackendError):
    """Raised by a backend for an event its tracker can never take (classified ``PERMANENT``)."""


class TrackerConfigurationError(BackendError):
    """Raised by a backend when its tracker cannot be used as configured (classified ``CONFIGURATION``)."""


class TraceletWarning(UserWarning):
    """Something was sanitised or skipped; training goes on."""


_seen: set[str] = set()
_seen_lock = threading.Lock()


def warn_once(key: str, message: str) -> bool:
    """Emit ``message`` as a :class:`TraceletWarning` the first time ``key`` is seen.

    Warnings are keyed by what went wrong (e.g. ``"nan:train/loss"``), not by where, so a bad value
    logged every step warns once, not once per step.

    Args:
        key: identity of the problem.
        message: what the user reads.

    Returns:
        True when the warning was emitted now, False when it had been emitted before.

    Example:
        >>> warn_once("doc-example", "shown once")  # doctest: +SKIP
        True
    """
    with _seen_lock:
        if key in _seen:
            return False
        _seen.add(key)
    try:
        warnings.warn(message, TraceletWarning, stacklevel=3)
    except Warning:
        # Under `-W error` a warning becomes an exception; raised here it would crash training or
        # stall a delivery worker. Tracking never does either: the message is logged instead.
        logging.getLogger("tracelet").warning(message)
    return True
