"""Credentials in backend options: never stored, logged or printed; still there where delivery needs them.

A user may put credentials in a URI (``TRACELET_MLFLOW__TRACKING_URI=http://user:PASSWORD@host:5000``,
``postgresql://user:PASSWORD@db/mlflow``). The run's journal keeps each option with the credentials
removed (:func:`split_credentials`); the credentials reach the delivery process through the
environment it inherits, set on the child process only, never in the user's own process: for an
MLflow server (``http(s)://user:password@host``) as MLflow's own ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD``, so that MLflow never sees them in a URI it could print; otherwise as the
full value in ``TRACELET_<BACKEND>__<OPTION>``. ``tracelet sync`` finds them in its own environment:
those variables, or the tracker's own (``MLFLOW_TRACKING_URI``). A value from the environment is only
used when it names the same place as the stored one (:func:`restore_credentials`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from tracelet_core.collectors.git import strip_credentials

__all__ = ["credential_variable", "restore_credentials", "split_credentials", "strip_credentials"]

# Options whose HTTP user and password a tracker reads from variables of its own.
_SDK_BASIC_AUTH = {("mlflow", "tracking_uri"): ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}

BackendOptions = dict[str, dict[str, Any]]


def credential_variable(backend: str, option: str) -> str:
    """The variable that carries an option's full value to the delivery process.

    Example:
        >>> credential_variable("mlflow", "tracking_uri")
        'TRACELET_MLFLOW__TRACKING_URI'
    """
    return f"TRACELET_{backend}__{option}".upper()


def split_credentials(options: Mapping[str, Mapping[str, Any]]) -> tuple[BackendOptions, dict[str, str]]:
    """Backend options without credentials, and the variables that carry the full values.

    Example:
        >>> stored, env = split_credentials({"mlflow": {"tracking_uri": "http://u:p%40w@host:5000", "http_timeout": 9}})
        >>> stored
        {'mlflow': {'tracking_uri': 'http://host:5000', 'http_timeout': 9}}
        >>> env
        {'MLFLOW_TRACKING_USERNAME': 'u', 'MLFLOW_TRACKING_PASSWORD': 'p@w'}
        >>> split_credentials({"mlflow": {"tracking_uri": "postgresql://u:pw@db/mlflow"}})[1]
        {'TRACELET_MLFLOW__TRACKING_URI': 'postgresql://u:pw@db/mlflow'}
    """
    stored: BackendOptions = {}
    carried: dict[str, str] = {}
    for backend, section in options.items():
        stored[backend] = {}
        for option, value in section.items():
            if isinstance(value, str) and (clean := strip_credentials(value)) != value:
                stored[backend][option] = clean
                carried.update(_carry(backend, option, value))
            else:
                stored[backend][option] = value
    return stored, carried


def _carry(backend: str, option: str, value: str) -> dict[str, str]:
    """The variables that carry one option's credentials to the delivery process."""
    parts = urlsplit(value)
    auth = _SDK_BASIC_AUTH.get((backend, option))
    if auth and parts.scheme in ("http", "https") and parts.username is not None:
        return {auth[0]: unquote(parts.username), auth[1]: unquote(parts.password or "")}
    return {credential_variable(backend, option): value}


def _sdk_variable(backend: str, option: str) -> str | None:
    """The tracker's own variable that may hold the full value of one of its options (``MLFLOW_TRACKING_URI``)."""
    from tracelet_core.trackers import all_trackers

    tracker = all_trackers().get(backend)
    return tracker.sdk_variables.get(option) if tracker is not None else None


def restore_credentials(
    options: Mapping[str, Mapping[str, Any]], environ: Mapping[str, str] | None = None
) -> BackendOptions:
    """Stored backend options with credentials put back from ``environ`` (default: ``os.environ``).

    A variable's value is used only when, without its credentials, it equals the stored value: a
    ``tracelet sync`` in a shell pointed at another server never sends that server's credentials here.

    Example:
        >>> env = {"MLFLOW_TRACKING_URI": "http://u:pw@host:5000"}
        >>> restore_credentials({"mlflow": {"tracking_uri": "http://host:5000"}}, env)
        {'mlflow': {'tracking_uri': 'http://u:pw@host:5000'}}
        >>> restore_credentials({"mlflow": {"tracking_uri": "http://other:5000"}}, env)
        {'mlflow': {'tracking_uri': 'http://other:5000'}}
    """
    environ = os.environ if environ is None else environ
    restored: BackendOptions = {}
    for backend, section in options.items():
        restored[backend] = dict(section)
        for option, value in section.items():
            if not isinstance(value, str):
                continue
            for variable in (credential_variable(backend, option), _sdk_variable(backend, option)):
                full = environ.get(variable) if variable else None
                if full and full != value and strip_credentials(full) == value:
                    restored[backend][option] = full
                    break
    return restored
