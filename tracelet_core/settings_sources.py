"""Where Tracelet's settings come from, for messages: the ``TRACELET_*`` variables of the environment
and the ``.env`` file, which of them are no setting, and which one a validation error is about.

pydantic-settings reads these sources itself; this module reads them again only to name a wrong
value's source (argument, environment, ``.env``) and to warn about a misspelt name, which
pydantic-settings ignores without a word. It takes the settings model as an argument, so that
:mod:`tracelet_core.settings` can use it without an import cycle.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterable
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsError

from tracelet_core.errors import warn_once

__all__ = [
    "DELIVERY_PROCESS_MARKER",
    "ENV_FILE",
    "ENV_PREFIX",
    "INTERNAL_VARIABLES",
    "NESTED_DELIMITER",
    "SourcedValue",
    "closest",
    "describe",
    "describe_unparsable",
    "read_variables",
    "variable_name",
    "warn_unknown_variables",
]

ENV_PREFIX = "TRACELET_"
NESTED_DELIMITER = "__"
ENV_FILE = ".env"
# Set in the delivery process's environment (pipeline/delivery_process.py): tells it from the training process.
DELIVERY_PROCESS_MARKER = "TRACELET_DELIVERY_PROCESS"
# TRACELET_* variables that are not settings but Tracelet's own: the delivery process's marker and the
# tags the benchmarks put on the processes they start (benchmarks/_common.py).
INTERNAL_VARIABLES = frozenset({DELIVERY_PROCESS_MARKER, "TRACELET_BENCH_TAG", "TRACELET_BENCH_SERVER_TAG"})

Model = type[BaseSettings]


class SourcedValue(NamedTuple):
    """A ``TRACELET_*`` variable as pydantic-settings reads it."""

    name: str  # as written: pydantic-settings takes any case
    value: str
    where: str  # "from the environment" or "from .env at <path>"


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``name``, if one is close enough.

    Example:
        >>> closest("expriment", ["experiment", "run_name"])
        'experiment'
    """
    import difflib  # only for a wrong name: a correct configuration never pays for it

    matches = difflib.get_close_matches(name, list(candidates), n=1)
    return matches[0] if matches else None


def variable_name(*path: str) -> str:
    """``TRACELET_<FIELD>`` or ``TRACELET_<SECTION>__<FIELD>``.

    Example:
        >>> variable_name("mlflow", "tracking_uri")
        'TRACELET_MLFLOW__TRACKING_URI'
    """
    return ENV_PREFIX + NESTED_DELIMITER.join(part.upper() for part in path)


def read_variables() -> list[SourcedValue]:
    """The ``TRACELET_*`` variables of the environment, then of the ``.env`` file (pydantic-settings' precedence)."""
    found = [
        SourcedValue(name, value, "from the environment")
        for name, value in os.environ.items()
        if name.upper().startswith(ENV_PREFIX)
    ]
    path = Path(ENV_FILE)
    if path.is_file():
        from dotenv import dotenv_values  # already imported by pydantic-settings

        where = f"from .env at {path.absolute()}"
        for name, value in dotenv_values(path, encoding="utf-8").items():
            if name.upper().startswith(ENV_PREFIX):
                found.append(SourcedValue(name, value or "", where))
    return found


def warn_unknown_variables(variables: list[SourcedValue], model: Model) -> None:
    """Warn once per ``TRACELET_*`` name that is no setting of ``model``: pydantic-settings ignores those
    without a word."""
    for found in variables:
        variable = found.name.upper()
        if variable in _known_variables(model) or variable in INTERNAL_VARIABLES or _is_plugin_option(variable, model):
            continue
        hint = _suggest_variable(variable, model)
        advice = f"did you mean {hint}?" if hint else "the configuration reference lists every name."
        warn_once(
            f"unknown-variable:{variable}",
            f"{found.name} ({found.where}) is not a Tracelet setting and is ignored; {advice}",
        )


def describe(exc: ValidationError, arguments: Collection[str], variables: list[SourcedValue], model: Model) -> str:
    """One message for every problem of a validation error, each naming the argument or variable at fault."""
    problems = [_problem(error, arguments, variables, model) for error in exc.errors()]
    if len(problems) == 1:
        return f"Invalid Tracelet configuration: {problems[0]}"
    return "Invalid Tracelet configuration:\n  " + "\n  ".join(problems)


def describe_unparsable(exc: SettingsError, variables: list[SourcedValue]) -> str:
    """A backend section given as one variable that is not JSON (pydantic-settings names only the field)."""
    match = re.search(r'field "(\w+)"', str(exc))
    found = _find(variables, variable_name(match[1])) if match else None
    if found is None:
        return f"Invalid Tracelet configuration: {exc}"
    return (
        f"Invalid Tracelet configuration: {found.name}={found.value!r} ({found.where}): not valid JSON "
        f"({exc.__cause__}); give a JSON object, or one {found.name.upper()}__<OPTION> variable per option"
    )


def _find(variables: list[SourcedValue], variable: str) -> SourcedValue | None:
    return next((found for found in variables if found.name.upper() == variable), None)


def _section(model: Model, name: str) -> type[BaseModel] | None:
    """The options model of a backend section (``mlflow``); None for a plain setting."""
    field = model.model_fields.get(name)
    annotation = field.annotation if field is not None else None
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


@lru_cache(maxsize=4)
def _known_variables(model: Model) -> frozenset[str]:
    """``TRACELET_<FIELD>`` of every setting and ``TRACELET_<SECTION>__<FIELD>`` of every backend option."""
    names = set()
    for name in model.model_fields:
        names.add(variable_name(name))
        if (section := _section(model, name)) is not None:
            names.update(variable_name(name, option) for option in section.model_fields)
    return frozenset(names)


@lru_cache(maxsize=32)
def _suggest_variable(variable: str, model: Model) -> str | None:
    # Compared without the prefix, which every name shares and which would make any two names look alike.
    known = [name.removeprefix(ENV_PREFIX) for name in _known_variables(model)]
    hint = closest(variable.removeprefix(ENV_PREFIX), known)
    return ENV_PREFIX + hint if hint else None


def _is_plugin_option(variable: str, model: Model) -> bool:
    """``TRACELET_<BACKEND>__<OPTION>`` of a third-party backend, which has no settings section."""
    section, delimiter, _ = variable.removeprefix(ENV_PREFIX).partition(NESTED_DELIMITER)
    if not delimiter or section.lower() in model.model_fields:
        return False
    from tracelet_core.trackers import available_backend_names

    return section.lower() in available_backend_names()


def _problem(error: ErrorDetails, arguments: Collection[str], variables: list[SourcedValue], model: Model) -> str:
    """One line: the argument or variable, its value, where it came from, and what is wrong with it."""
    loc = [str(part) for part in error["loc"]]
    message = error["msg"].removeprefix("Value error, ")
    if not loc:
        return message
    depth = 2 if len(loc) > 1 and _section(model, loc[0]) is not None else 1  # a setting, or a section's option
    if loc[0] in arguments:
        return f"{'.'.join(loc[:depth])}{_inside(loc[depth:])}={error.get('input')!r} (argument): {message}"
    for cut in range(depth, 0, -1):  # TRACELET_MLFLOW__HTTP_TIMEOUT, else the whole section TRACELET_MLFLOW
        if (found := _find(variables, variable_name(*loc[:cut]))) is not None:
            inside = _inside(loc[cut:]).removeprefix(".")
            return f"{found.name}={found.value!r} ({found.where}): {inside + ': ' if inside else ''}{message}"
    return f"{variable_name(*loc[:depth])}={error.get('input')!r}: {message}"


def _inside(parts: list[str]) -> str:
    """Where in a value an error is: ``[0]`` for a list item, ``.name`` for a key."""
    return "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in parts)
