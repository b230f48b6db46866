"""What an Aim error means for one delivery: transient (retry) or configuration (stop and tell the user)."""

from __future__ import annotations

from tracelet_core.errors import ErrorKind
from tracelet_core.trackers.base import classify_common_error

__all__ = ["classify"]

_CONFIGURATION_ERRORS = frozenset(
    {
        "aimrocks.errors.Corruption",  # a damaged repository (aimrocks has no type stubs to import it by)
        "aim.ext.transport.tracking.UnauthorizedRequestError",  # an aim:// server refusing this client
    }
)


def classify(exc: BaseException) -> ErrorKind:
    """Aim's errors: a damaged repository, a legacy run lock or a deleted run is configuration;
    a run another process holds (``filelock.Timeout``) and I/O errors are transient.

    Example:
        >>> from aim.sdk.errors import RunLockingError
        >>> classify(RunLockingError("Cannot acquire lock for Run 'x'")).value
        'configuration'
    """
    from aim.sdk.errors import MissingRunError, RepoIntegrityError, RunLockingError

    if isinstance(exc, RunLockingError | RepoIntegrityError | MissingRunError):
        return ErrorKind.CONFIGURATION  # needs `aim runs close --force`, a repair, or the run is gone
    if f"{type(exc).__module__}.{type(exc).__qualname__}" in _CONFIGURATION_ERRORS:
        return ErrorKind.CONFIGURATION
    return classify_common_error(exc)
