"""Where a run's trackers are: the destination recorded with the run, and the one an environment names.

A tracker's place is one of its options (MLflow's ``tracking_uri``, Aim's ``repo``...). When the option
is unset the SDK decides from its own variable (``MLFLOW_TRACKING_URI``) or its default (``./mlflow.db``),
and that choice belongs to the environment the run was recorded in: ``tracelet sync``, run later from
another shell or directory, must not send the run somewhere else. So the recorded place is the
option as stored, else what the SDK's variable held when the run was recorded
(:func:`resolve_sdk_variables` at recording), else where the tracker said the run went (its
delivery's ``location``). Credentials are never part of it (see :mod:`.pipeline.credentials`).

Example:
    >>> place("mlflow", {"tracking_uri": "http://u:pw@host:5000"}), place("mlflow", {})
    ('http://host:5000', None)
    >>> describe("mlflow", {"tracking_uri": None})
    "MLflow's default (MLFLOW_TRACKING_URI, else ./mlflow.db where the command runs)"
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tracelet_core.collectors.git import strip_credentials
from tracelet_core.pipeline.contract import BackendDelivery

__all__ = ["PLACE_OPTIONS", "describe", "place", "recorded_options", "resolve_sdk_variables", "same_place"]

# The option that says where a tracker's runs go when its default depends on the working directory or
# the shell (MLflow: MLFLOW_TRACKING_URI or ./mlflow.db; Aim: ./.aim); its location() gives the same value.
# W&B and ClearML default to the user's login and configuration: the same from any directory.
PLACE_OPTIONS: dict[str, str] = {"mlflow": "tracking_uri", "aim": "repo"}
_DEFAULTS = {
    "mlflow": "MLflow's default (MLFLOW_TRACKING_URI, else ./mlflow.db where the command runs)",
    "aim": "Aim's default (./.aim where the command runs)",
    "wandb": "W&B's default (WANDB_MODE, WANDB_PROJECT, WANDB_DIR)",
    "clearml": "ClearML's configuration (clearml.conf, CLEARML_*)",
}


def place(backend: str, options: Mapping[str, Any]) -> str | None:
    """The value of a backend's place option, without credentials (None when unset or unknown)."""
    option = PLACE_OPTIONS.get(backend)
    value = options.get(option) if option else None
    return None if value is None else strip_credentials(str(value))


def describe(backend: str, options: Mapping[str, Any]) -> str:
    """Where ``options`` send a backend's runs, in words a user reads."""
    where = place(backend, options)
    if where is not None:
        return where
    if backend in _DEFAULTS:
        return _DEFAULTS[backend]
    shown = {k: strip_credentials(str(v)) for k, v in options.items() if v is not None}
    return f"options {shown}" if shown else f"{backend}'s defaults"


def same_place(backend: str, one: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Whether two option sets send a backend's runs to the same place."""
    if backend in PLACE_OPTIONS:
        return place(backend, one) == place(backend, other)
    return {k: v for k, v in one.items() if v is not None} == {k: v for k, v in other.items() if v is not None}


def resolve_sdk_variables(
    backend: str, options: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``options`` with each unset option taken from the SDK's own variable for it (``MLFLOW_TRACKING_URI``).

    What the recording process should journal, so that the run's destination does not depend on the
    environment of a later ``tracelet sync``. Credentials are still in the result: store it through
    :func:`~tracelet_core.pipeline.credentials.split_credentials`.

    Example:
        >>> resolve_sdk_variables("mlflow", {"tracking_uri": None}, {"MLFLOW_TRACKING_URI": "http://h:5000"})
        {'tracking_uri': 'http://h:5000'}
    """
    from tracelet_core.trackers import all_trackers

    environ = os.environ if environ is None else environ
    tracker = all_trackers().get(backend)
    resolved = dict(options)
    for option, variable in tracker.sdk_variables.items() if tracker is not None else ():
        if resolved.get(option) is None and environ.get(variable):
            resolved[option] = environ[variable]
    return resolved


def recorded_options(backend: str, stored: Mapping[str, Any], delivery: BackendDelivery | None) -> dict[str, Any]:
    """A backend's options as the run recorded them, its place filled in from where the tracker said the
    run went when the option itself was not recorded.

    Example:
        >>> from tracelet_core.pipeline.contract import DeliveryState
        >>> row = BackendDelivery("mlflow", 9, "abc", "http://h:5000", DeliveryState.CLOSED, None, 0)
        >>> recorded_options("mlflow", {"tracking_uri": None, "http_timeout": 30.0}, row)
        {'tracking_uri': 'http://h:5000', 'http_timeout': 30.0}
    """
    options = dict(stored)
    option = PLACE_OPTIONS.get(backend)
    if option and options.get(option) is None and delivery is not None and delivery.location:
        options[option] = delivery.location
    return options
