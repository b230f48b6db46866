"""Where each of ``tracelet doctor``'s settings came from: an argument, ``TRACELET_*``, ``.env``, an SDK's own
variable, or the default; with secrets masked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tracelet_core.settings import TraceletSettings
from tracelet_core.trackers import all_trackers
from tracelet_core.trackers.doctor import mask

__all__ = ["SettingRow", "mask", "sdk_variables", "setting_rows"]


def sdk_variables() -> dict[str, str]:
    """Each tracker option (``mlflow.tracking_uri``) that an SDK variable fills when Tracelet's own setting is unset.

    Example:
        >>> sdk_variables()["mlflow.tracking_uri"]
        'MLFLOW_TRACKING_URI'
    """
    return {
        f"{name}.{option}": variable
        for name, tracker in all_trackers().items()
        for option, variable in tracker.sdk_variables.items()
    }


@dataclass
class SettingRow:
    """One setting: its dotted name, its value as shown (secrets masked) and where it came from."""

    name: str
    value: str
    source: str


def _dotenv() -> dict[str, str]:
    if not Path(".env").is_file():
        return {}
    from dotenv import dotenv_values

    return {k.upper(): v for k, v in dotenv_values(".env").items() if v is not None}


def setting_rows(settings: TraceletSettings, given: set[str]) -> list[SettingRow]:
    """Every setting, nested sections flattened (``mlflow.tracking_uri``), with its source:
    ``argument``, ``env TRACELET_...``, ``.env``, ``env <SDK variable>`` (unset here, the SDK reads it) or ``default``.
    """
    environ = {k.upper(): v for k, v in os.environ.items()}
    dotenv = _dotenv()
    rows = []
    for name, value in settings:
        if isinstance(value, BaseModel):
            for sub, sub_value in value:
                variables = [f"TRACELET_{name}__{sub}".upper(), f"TRACELET_{name}".upper()]
                rows.append(_row(f"{name}.{sub}", sub_value, variables, given, environ, dotenv))
        else:
            rows.append(_row(name, value, [f"TRACELET_{name}".upper()], given, environ, dotenv))
    for name in settings.resolved_backends():  # installed trackers' own sections
        if name not in type(settings).model_fields:
            for sub, sub_value in settings.backend_options(name).items():
                variables = [f"TRACELET_{name}__{sub}".upper()]
                rows.append(_row(f"{name}.{sub}", sub_value, variables, given, environ, dotenv))
    return rows


def _row(
    name: str, value: Any, variables: list[str], given: set[str], environ: dict[str, str], dotenv: dict[str, str]
) -> SettingRow:
    if isinstance(value, list):
        shown = ",".join(map(str, value)) if value else "-"
    elif isinstance(value, dict):
        shown = ",".join(f"{k}={mask(k, v)}" for k, v in value.items()) if value else "-"
    else:
        shown = mask(name, value)
    if name.split(".")[0] in given:
        return SettingRow(name, shown, "argument")
    for variable in variables:
        if variable in environ:
            return SettingRow(name, shown, f"env {variable}")
    for variable in variables:
        if variable in dotenv:
            return SettingRow(name, shown, f".env {variable}")
    sdk_variable = sdk_variables().get(name)
    if value is None and sdk_variable and os.environ.get(sdk_variable):
        return SettingRow(name, mask(name, os.environ[sdk_variable]), f"env {sdk_variable} (the SDK's own)")
    return SettingRow(name, shown, "default")
