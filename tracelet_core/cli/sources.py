"""Where each of ``tracelet doctor``'s settings came from: an argument, ``TRACELET_*``, ``.env``, an SDK's own
variable, or the default; with secrets masked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tracelet_core.collectors.environment import MASK, looks_secret
from tracelet_core.collectors.git import strip_credentials
from tracelet_core.settings import TraceletSettings

__all__ = ["SDK_VARIABLES", "SettingRow", "mask", "setting_rows"]

# Each backend option that an SDK variable fills when Tracelet's own setting is unset.
SDK_VARIABLES = {
    "mlflow.tracking_uri": "MLFLOW_TRACKING_URI",
    "wandb.project": "WANDB_PROJECT",
    "wandb.entity": "WANDB_ENTITY",
    "wandb.group": "WANDB_RUN_GROUP",
    "wandb.job_type": "WANDB_JOB_TYPE",
    "wandb.mode": "WANDB_MODE",
    "wandb.dir": "WANDB_DIR",
    "clearml.offline": "CLEARML_OFFLINE_MODE",
}


@dataclass
class SettingRow:
    """One setting: its dotted name, its value as shown (secrets masked) and where it came from."""

    name: str
    value: str
    source: str


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
    sdk_variable = SDK_VARIABLES.get(name)
    if value is None and sdk_variable and os.environ.get(sdk_variable):
        return SettingRow(name, mask(name, os.environ[sdk_variable]), f"env {sdk_variable} (the SDK's own)")
    return SettingRow(name, shown, "default")
