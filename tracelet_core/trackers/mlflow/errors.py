"""What an MLflow error means for one delivery: transient (retry), permanent (set the event aside) or
configuration (stop and tell the user). Also where a SQLite store lives, for the lock around its first open.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tracelet_core.errors import ErrorKind
from tracelet_core.trackers.base import classify_common_error

__all__ = ["classify", "sqlite_file"]

# MLflow error codes (mlflow.protos.databricks_pb2) by what they mean for one delivery; any other
# code (INTERNAL_ERROR, TEMPORARILY_UNAVAILABLE, REQUEST_LIMIT_EXCEEDED, DEADLINE_EXCEEDED...) is
# transient. HTTP statuses arrive as codes too: 400 BAD_REQUEST, 401 UNAUTHENTICATED,
# 403 PERMISSION_DENIED, 404 ENDPOINT_NOT_FOUND, 429 RESOURCE_EXHAUSTED, 5xx INTERNAL_ERROR...
_PERMANENT_CODES = frozenset(
    {
        "BAD_REQUEST",
        "INVALID_PARAMETER_VALUE",
        "MALFORMED_REQUEST",
        "INVALID_STATE",
        "RESOURCE_ALREADY_EXISTS",
        "ALREADY_EXISTS",
        "RESOURCE_LIMIT_EXCEEDED",
        "MAX_BLOCK_SIZE_EXCEEDED",
        "MAX_LIST_SIZE_EXCEEDED",
    }
)
_CONFIGURATION_CODES = frozenset(
    {
        "UNAUTHENTICATED",
        "CUSTOMER_UNAUTHORIZED",
        "PERMISSION_DENIED",
        "RESOURCE_DOES_NOT_EXIST",  # the run or experiment was deleted for good
        "NOT_FOUND",
        "ENDPOINT_NOT_FOUND",  # a URI that is not an MLflow server (or a wrong path prefix)
        "NOT_IMPLEMENTED",
        "FEATURE_DISABLED",
        "QUOTA_EXCEEDED",
    }
)
# Messages whose code says less than they do (MLflow raises some with a generic code).
_CONFIGURATION_MESSAGES = (
    "must be in the 'active' state",  # a deleted run or experiment (INVALID_PARAMETER_VALUE)
    "out-of-date database schema",  # `mlflow db upgrade` needed (INTERNAL_ERROR)
    "readonly database",  # a SQLite file this process cannot write (TEMPORARILY_UNAVAILABLE)
)
_PERMANENT_MESSAGES = ("Invalid artifact path",)  # a name with `..` or a leading `/` (INTERNAL_ERROR)


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:`` tracking URI; None for any other store and in-memory SQLite.

    Example:
        >>> sqlite_file("sqlite:////tmp/mlflow.db"), sqlite_file("sqlite:///mlflow.db")
        (PosixPath('/tmp/mlflow.db'), PosixPath('mlflow.db'))
        >>> sqlite_file("http://127.0.0.1:5000"), sqlite_file("sqlite://")
        (None, None)
    """
    if not uri.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url  # an MLflow dependency
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(uri)
    except ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from or during, innermost last (MLflow often drops ``from``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _classify_cause(exc: BaseException) -> ErrorKind | None:
    """The kind an underlying SQLAlchemy or requests error decides, or None."""
    import requests
    from sqlalchemy import exc as sql

    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.InvalidURL):
        return ErrorKind.CONFIGURATION
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return ErrorKind.TRANSIENT
    if isinstance(exc, sql.IntegrityError | sql.DataError):
        return ErrorKind.PERMANENT  # a value the database refuses (too long, a broken constraint)
    if isinstance(exc, sql.OperationalError | sql.InterfaceError | sql.InternalError | sql.TimeoutError):
        return ErrorKind.TRANSIENT  # locked, disk I/O, connection lost, pool exhausted
    if isinstance(exc, sql.DatabaseError):
        return ErrorKind.CONFIGURATION  # "file is not a database", "database disk image is malformed"
    return None


def classify(exc: BaseException) -> ErrorKind:
    """An MLflow error by its code, message and cause; anything else as :func:`classify_common_error`.

    Example:
        >>> from mlflow.exceptions import MlflowException
        >>> from mlflow.protos import databricks_pb2 as codes
        >>> def kind(code: int) -> str:
        ...     return classify(MlflowException("refused", error_code=code)).value
        >>> kind(codes.INVALID_PARAMETER_VALUE), kind(codes.PERMISSION_DENIED), kind(codes.TEMPORARILY_UNAVAILABLE)
        ('permanent', 'configuration', 'transient')
    """
    from mlflow.exceptions import MlflowException

    mlflow_error = exc if isinstance(exc, MlflowException) else None
    if mlflow_error is not None:
        if any(text in mlflow_error.message for text in _CONFIGURATION_MESSAGES):
            return ErrorKind.CONFIGURATION
        if any(text in mlflow_error.message for text in _PERMANENT_MESSAGES):
            return ErrorKind.PERMANENT
    for cause in _causes(exc):  # a database or HTTP error MLflow wrapped says more than its code
        kind = _classify_cause(cause)
        if kind is not None:
            return kind
    if mlflow_error is None:
        return classify_common_error(exc)
    if mlflow_error.error_code in _CONFIGURATION_CODES:
        return ErrorKind.CONFIGURATION
    if mlflow_error.error_code in _PERMANENT_CODES:
        return ErrorKind.PERMANENT
    return ErrorKind.TRANSIENT
