"""What a ClearML error means for one delivery: transient (retry), permanent (set the event aside) or
configuration (stop and tell the user)."""

from __future__ import annotations

import re

from tracelet_core.errors import ErrorKind
from tracelet_core.trackers.base import classify_common_error

__all__ = ["classify"]

_LOGIN_STATUS = re.compile(r"\(error (\d{3}) from ")  # clearml's LoginError message


def classify(exc: BaseException) -> ErrorKind:
    """ClearML's errors: refused credentials or a missing server configuration are configuration,
    an unreachable server transient, a request the server refuses by its status.

    Example:
        >>> from clearml.backend_api.session.session import LoginError
        >>> classify(LoginError("Failed getting token (error 401 from http://x): no")).value
        'configuration'
    """
    from clearml.backend_api.session.defs import MissingConfigError
    from clearml.backend_api.session.session import LoginError
    from clearml.backend_interface.session import SendError

    if isinstance(exc, MissingConfigError):
        return ErrorKind.CONFIGURATION
    if isinstance(exc, LoginError):  # also wraps a connection error while logging in
        status = _LOGIN_STATUS.search(str(exc))
        refused = status is not None and 400 <= int(status[1]) < 500 and int(status[1]) not in (408, 429)
        return ErrorKind.CONFIGURATION if refused else ErrorKind.TRANSIENT
    if isinstance(exc, SendError):
        code = int(getattr(getattr(exc.result, "meta", None), "result_code", 0) or 0)
        if code in (401, 403, 404):  # credentials, permission, a task deleted on the server
            return ErrorKind.CONFIGURATION
        if 400 <= code < 500 and code not in (408, 429):
            return ErrorKind.PERMANENT
        return ErrorKind.TRANSIENT
    return classify_common_error(exc)
