"""What a W&B error means for one delivery: transient (retry), permanent (set the event aside) or
configuration (stop and tell the user)."""

from __future__ import annotations

import re

from tracelet_core.errors import ErrorKind
from tracelet_core.trackers.base import classify_common_error

__all__ = ["classify"]

# How wandb-core words a request it gave up retrying (connection refused, 429, 5xx) or a status.
_RETRIED = ("timed out", "deadline exceeded", "while retrying", "connection refused")
_HTTP_STATUS = re.compile(r"returned error (\d{3})")


def classify(exc: BaseException, during: str) -> ErrorKind:
    """W&B's errors: a refused key, project or entity is configuration, a server that cannot be
    reached (``CommError`` after wandb-core's own retries) transient.

    wandb-core retries what may pass (connection refused, 429, 5xx) until ``init_timeout`` and
    then says so ("Timed out while retrying", "context deadline exceeded"); any other
    ``CommError`` at start is the server's answer to the request itself ("returned error 401",
    403, an unknown entity or project), which retrying repeats.

    Example:
        >>> from wandb.errors import AuthenticationError, CommError, UsageError
        >>> [classify(exc, "start").value for exc in (
        ...     UsageError("No API key configured. Use `wandb login` to log in."),
        ...     AuthenticationError("API key must have 40+ characters, has 5."),
        ...     CommError("Timed out while retrying: dial tcp 127.0.0.1:9: connect: connection refused"),
        ...     CommError("permission denied"))]
        ['configuration', 'configuration', 'transient', 'configuration']
    """
    from wandb.errors import AuthenticationError, CommError, UsageError, WandbCoreNotAvailableError

    if isinstance(exc, AuthenticationError | UsageError | WandbCoreNotAvailableError):
        return ErrorKind.CONFIGURATION  # no key, a malformed one, a bad project name, a finished run
    if isinstance(exc, CommError):
        status = _HTTP_STATUS.search(str(exc))
        if status:
            code = int(status[1])
            refused = 400 <= code < 500 and code not in (408, 429)
        else:
            refused = not any(text in str(exc).lower() for text in _RETRIED)
        return ErrorKind.CONFIGURATION if refused and during == "start" else ErrorKind.TRANSIENT
    return classify_common_error(exc)
