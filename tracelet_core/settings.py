"""Tracelet's configuration: one pydantic-settings model, read from arguments, ``TRACELET_*`` and ``.env``.

Precedence (highest first): constructor arguments, ``TRACELET_*`` environment variables, a ``.env``
file in the working directory, each tracker SDK's own variables (``MLFLOW_TRACKING_URI``,
``WANDB_PROJECT``, ...), then the defaults below. A field left ``None`` means "let the tracker's SDK
decide", which is how the SDK's own variables keep working.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Collection, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, BeforeValidator, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from tracelet_core.errors import ConfigurationError, warn_once
from tracelet_core.normalize import DEFAULT_SECRET_PARAMS
from tracelet_core.trackers.aim.options import AimOptions
from tracelet_core.trackers.clearml.options import ClearMLOptions
from tracelet_core.trackers.mlflow.options import MlflowOptions
from tracelet_core.trackers.wandb.options import WandbOptions

__all__ = [
    "INTERNAL_VARIABLES",
    "AimOptions",
    "ClearMLOptions",
    "MlflowOptions",
    "TraceletSettings",
    "WandbOptions",
    "check_keywords",
    "load_settings",
]

ENV_PREFIX = "TRACELET_"
NESTED_DELIMITER = "__"
ENV_FILE = ".env"
# TRACELET_* variables that are not settings but Tracelet's own: the marker of the delivery process
# (pipeline/sidecar.py) and the tags the benchmarks put on the processes they start (benchmarks/_common.py).
INTERNAL_VARIABLES = frozenset({"TRACELET_SIDECAR", "TRACELET_BENCH_TAG", "TRACELET_BENCH_SERVER_TAG"})

CheckpointPolicy = Literal["none", "last", "best", "all"]
DeliveryMode = Literal["process", "thread"]


def _split_list(value: Any) -> Any:
    """Accept ``"a,b"``, ``'["a","b"]'`` or a real list for list-valued settings."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


def _split_mapping(value: Any) -> Any:
    """Accept ``"k=v,k2=v2"``, a JSON object, or a real mapping for ``tags``."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return {}
        if text.startswith("{"):
            return json.loads(text)
        pairs: dict[str, str] = {}
        for item in text.split(","):
            if not item.strip():
                continue
            key, sep, val = item.partition("=")
            if not sep:
                raise ValueError(f"tag {item.strip()!r} is not of the form key=value")
            pairs[key.strip()] = val.strip()
        return pairs
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(_split_list)]
TagMap = Annotated[dict[str, str], NoDecode, BeforeValidator(_split_mapping)]


class TraceletSettings(BaseSettings):
    """Everything Tracelet can be told, with where each value may come from.

    Example:
        >>> s = TraceletSettings(backends=["mlflow"], tags={"team": "vision"})
        >>> s.backends, s.tags
        (['mlflow'], {'team': 'vision'})
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    enabled: bool = Field(True, description="false makes every Tracelet call a no-op.")
    backends: CommaList | None = Field(
        None,
        description="Trackers to send the run to, e.g. mlflow,wandb,clearml,aim. "
        "Unset: mlflow if it is installed, else the journal alone.",
    )
    experiment: str = Field(
        "tracelet", description="Experiment (MLflow, Aim) or project (W&B, ClearML) name the run goes under."
    )
    run_name: str | None = Field(None, description="Name of the run. Unset: each tracker's own naming.")
    tags: TagMap = Field(default_factory=dict, description="Tags for the run, as k=v,k2=v2 or a JSON object.")
    system_metrics: bool = Field(True, description="Record CPU, memory, disk, network and GPU load.")
    system_metrics_interval: float = Field(10.0, gt=0, description="Seconds between two reported system metric points.")
    git: bool = Field(True, description="Record the git commit, branch, dirty state and remote.")
    environment: bool = Field(True, description="Record Python, platform, packages and filtered env vars.")
    env_include: CommaList = Field(
        default_factory=list,
        description="Glob patterns of environment variables to record (secret-looking names always masked). "
        "Empty: a built-in list (CUDA_*, NCCL_*, TORCH_*, OMP_*, SLURM_*, RANK, WORLD_SIZE...).",
    )
    env_exclude: CommaList = Field(
        default_factory=list, description="Glob patterns of environment variables never to record."
    )
    log_checkpoints: CheckpointPolicy = Field(
        "best",
        description="Which Lightning checkpoints to upload: none; last (the newest); best (each new best of "
        "every ModelCheckpoint); all (every file ModelCheckpoint saves).",
    )
    journal_dir: Path = Field(Path(".tracelet"), description="Where the runs' journals are kept.")
    delivery: DeliveryMode = Field(
        "process",
        description="process: deliver from a separate process (default); thread: from a thread in "
        "this process, for places that forbid subprocesses.",
    )
    flush_interval: float = Field(
        0.2, gt=0, le=60, description="Seconds between two journal writes (the most a crash can lose)."
    )
    finish_timeout: float = Field(
        60.0, ge=0, description="Seconds finish() waits for the trackers to acknowledge everything."
    )
    give_up_after: float = Field(
        300.0,
        ge=0,
        description="Seconds the delivery process keeps retrying an unreachable tracker after training "
        "has ended; what is left stays in the journal for `tracelet sync`.",
    )
    max_retry_backoff: float = Field(30.0, gt=0, description="Longest pause between two delivery retries.")
    keep_uploaded_files: bool = Field(
        False,
        description="Keep the run directory's copy of each file given to `log_artifact` (checkpoints "
        "included) after every tracker has it. Off, the copy is deleted then, so checkpoints do not pile up "
        "on disk; a later `tracelet sync` to another tracker then sends everything but those files.",
    )
    secret_params: CommaList = Field(
        default_factory=lambda: list(DEFAULT_SECRET_PARAMS),
        description="Glob patterns (any case) matched against the last segment of a hyperparameter key (after "
        "the last `/` or `.`); a matching hyperparameter's value is recorded as `***` in every tracker and in "
        "`tracelet/config.yaml`. The default masks `api_key`, `hf_token`, `db_password`, not `pad_token_id` "
        "or `max_new_tokens`; an empty list turns masking off.",
    )
    mlflow: MlflowOptions = Field(default_factory=MlflowOptions, description="MLflow backend options.")
    wandb: WandbOptions = Field(default_factory=WandbOptions, description="W&B backend options.")
    clearml: ClearMLOptions = Field(default_factory=ClearMLOptions, description="ClearML backend options.")
    aim: AimOptions = Field(default_factory=AimOptions, description="Aim backend options.")

    @field_validator("backends")
    @classmethod
    def _known_backends(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        from tracelet_core.trackers import available_backend_names, is_import_path

        known = available_backend_names()
        cleaned: list[str] = []
        for name in value:
            name = name.strip().lower() if not is_import_path(name) else name.strip()
            if not is_import_path(name) and name not in known:
                raise ValueError(f"unknown backend {name!r}; allowed: {', '.join(sorted(known))}")
            if name not in cleaned:
                cleaned.append(name)
        return cleaned

    def resolved_backends(self) -> list[str]:
        """The backends this run uses: the configured list, else mlflow when its SDK is installed."""
        if self.backends is not None:
            return list(self.backends)
        from importlib.util import find_spec

        return ["mlflow"] if find_spec("mlflow") is not None else []

    def backend_options(self, name: str) -> dict[str, Any]:
        """The options section of one tracker as a plain dict: a built-in one's field, or a third-party
        tracker's own options model read from ``TRACELET_<NAME>__<OPTION>`` (empty when it has none).

        Raises:
            ConfigurationError: a third-party tracker's option has a value its model refuses.
        """
        section = getattr(self, name, None) if name in type(self).model_fields else None
        if isinstance(section, BaseModel):
            return section.model_dump()
        from tracelet_core.trackers import all_trackers

        tracker = all_trackers().get(name)
        if tracker is None or tracker.options is None:
            return {}
        return _plugin_options(name, tracker.options)


def _plugin_options(name: str, options: type[BaseModel]) -> dict[str, Any]:
    """A third-party tracker's options, read as the built-in sections are (environment, then ``.env``)."""
    config = SettingsConfigDict(
        env_prefix=f"{ENV_PREFIX}{name.upper()}{NESTED_DELIMITER}", env_file=ENV_FILE, extra="ignore"
    )
    section = type(f"{options.__name__}FromEnvironment", (options, BaseSettings), {"model_config": config})
    try:
        return dict(section().model_dump())
    except ValidationError as exc:
        problems = "; ".join(
            f"{_variable(name, *map(str, error['loc']))}={error.get('input')!r}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"Invalid Tracelet configuration: {problems}") from None


def load_settings(settings: TraceletSettings | None = None, **overrides: Any) -> TraceletSettings:
    """Build the settings for a run, turning validation errors into one readable message.

    Unknown ``TRACELET_*`` names in the environment or the ``.env`` file are ignored, with one
    :class:`~tracelet_core.errors.TraceletWarning` each (naming the closest setting).

    Args:
        settings: a ready settings object; ``overrides`` are applied on top of it.
        **overrides: constructor-level values; ``None`` values are ignored so that "not given"
            falls through to the environment.

    Returns:
        The validated settings.

    Raises:
        TypeError: an override is not a settings field (the message suggests the closest one).
        ConfigurationError: a value is invalid; the message names the argument or variable, where it
            came from, the value and what is allowed.

    Example:
        >>> load_settings(experiment="digits").experiment
        'digits'
    """
    check_keywords(load_settings, overrides)
    variables = _read_variables()
    _warn_unknown_variables(variables)
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        if settings is None:
            return TraceletSettings(**given)
        if not given:
            return settings
        # A settings object's own values (its environment's included) are passed on as arguments.
        given = settings.model_dump(exclude_unset=True) | given
        return TraceletSettings(**given)
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc, given, variables)) from None
    except SettingsError as exc:  # a backend section's variable is not valid JSON
        raise ConfigurationError(_describe_unparsable(exc, variables)) from None


def check_keywords(function: Callable[..., Any], names: Iterable[str]) -> None:
    """Reject keywords that are neither ``function``'s own parameters nor :class:`TraceletSettings` fields.

    Args:
        function: the function that received the keywords (its name and parameters are in the message).
        names: the keywords it passes on to the settings.

    Raises:
        TypeError: a name is unknown; the message suggests the closest allowed name and lists them all.

    Example:
        >>> check_keywords(load_settings, ["experiment", "run_name"])
        >>> check_keywords(load_settings, ["expriment"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        TypeError: load_settings() got an unexpected keyword argument 'expriment' (did you mean 'experiment'?); ...
    """
    unknown = [name for name in names if name not in TraceletSettings.model_fields]
    if not unknown:
        return
    import inspect

    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    own = [p.name for p in inspect.signature(function).parameters.values() if p.kind not in variadic]
    allowed = own + [name for name in TraceletSettings.model_fields if name not in own]
    problems = []
    for name in unknown:
        hint = _closest(name, allowed)
        problems.append(f"{name!r} (did you mean {hint!r}?)" if hint else repr(name))
    what = "an unexpected keyword argument" if len(unknown) == 1 else "unexpected keyword arguments"
    raise TypeError(f"{function.__name__}() got {what} {', '.join(problems)}; allowed: {', '.join(allowed)}")


def _closest(name: str, candidates: Iterable[str]) -> str | None:
    import difflib  # only for a wrong name: a correct configuration never pays for it

    matches = difflib.get_close_matches(name, list(candidates), n=1)
    return matches[0] if matches else None


def _variable(*path: str) -> str:
    """``TRACELET_<FIELD>`` or ``TRACELET_<SECTION>__<FIELD>``."""
    return ENV_PREFIX + NESTED_DELIMITER.join(part.upper() for part in path)


def _section(name: str) -> type[BaseModel] | None:
    """The options model of a backend section (``mlflow``); None for a plain setting."""
    field = TraceletSettings.model_fields.get(name)
    annotation = field.annotation if field is not None else None
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


@lru_cache(maxsize=1)
def _known_variables() -> frozenset[str]:
    """``TRACELET_<FIELD>`` of every setting and ``TRACELET_<SECTION>__<FIELD>`` of every backend option."""
    names = set()
    for name in TraceletSettings.model_fields:
        names.add(_variable(name))
        if (section := _section(name)) is not None:
            names.update(_variable(name, option) for option in section.model_fields)
    return frozenset(names)


class _SourcedValue(NamedTuple):
    """A ``TRACELET_*`` variable as pydantic-settings reads it."""

    name: str  # as written: pydantic-settings takes any case
    value: str
    where: str  # "from the environment" or "from .env at <path>"


def _read_variables() -> list[_SourcedValue]:
    """The ``TRACELET_*`` variables of the environment, then of the ``.env`` file (pydantic-settings' precedence)."""
    found = [
        _SourcedValue(name, value, "from the environment")
        for name, value in os.environ.items()
        if name.upper().startswith(ENV_PREFIX)
    ]
    path = Path(ENV_FILE)
    if path.is_file():
        from dotenv import dotenv_values  # already imported by pydantic-settings

        where = f"from .env at {path.absolute()}"
        for name, value in dotenv_values(path, encoding="utf-8").items():
            if name.upper().startswith(ENV_PREFIX):
                found.append(_SourcedValue(name, value or "", where))
    return found


def _find(variables: list[_SourcedValue], variable: str) -> _SourcedValue | None:
    return next((found for found in variables if found.name.upper() == variable), None)


def _warn_unknown_variables(variables: list[_SourcedValue]) -> None:
    """Warn once per ``TRACELET_*`` name that is no setting: pydantic-settings ignores those without a word."""
    for found in variables:
        variable = found.name.upper()
        if variable in _known_variables() or variable in INTERNAL_VARIABLES or _is_plugin_option(variable):
            continue
        hint = _suggest_variable(variable)
        advice = f"did you mean {hint}?" if hint else "the configuration reference lists every name."
        warn_once(
            f"unknown-variable:{variable}",
            f"{found.name} ({found.where}) is not a Tracelet setting and is ignored; {advice}",
        )


@lru_cache(maxsize=32)
def _suggest_variable(variable: str) -> str | None:
    # Compared without the prefix, which every name shares and which would make any two names look alike.
    hint = _closest(variable.removeprefix(ENV_PREFIX), [name.removeprefix(ENV_PREFIX) for name in _known_variables()])
    return ENV_PREFIX + hint if hint else None


def _is_plugin_option(variable: str) -> bool:
    """``TRACELET_<BACKEND>__<OPTION>`` of a third-party backend, which has no settings section."""
    section, delimiter, _ = variable.removeprefix(ENV_PREFIX).partition(NESTED_DELIMITER)
    if not delimiter or section.lower() in TraceletSettings.model_fields:
        return False
    from tracelet_core.trackers import available_backend_names

    return section.lower() in available_backend_names()


def _describe(exc: ValidationError, arguments: Collection[str], variables: list[_SourcedValue]) -> str:
    problems = [_problem(error, arguments, variables) for error in exc.errors()]
    if len(problems) == 1:
        return f"Invalid Tracelet configuration: {problems[0]}"
    return "Invalid Tracelet configuration:\n  " + "\n  ".join(problems)


def _problem(error: ErrorDetails, arguments: Collection[str], variables: list[_SourcedValue]) -> str:
    """One line: the argument or variable, its value, where it came from, and what is wrong with it."""
    loc = [str(part) for part in error["loc"]]
    message = error["msg"].removeprefix("Value error, ")
    if not loc:
        return message
    depth = 2 if len(loc) > 1 and _section(loc[0]) is not None else 1  # a setting, or a section's option
    if loc[0] in arguments:
        return f"{'.'.join(loc[:depth])}{_inside(loc[depth:])}={error.get('input')!r} (argument): {message}"
    for cut in range(depth, 0, -1):  # TRACELET_MLFLOW__HTTP_TIMEOUT, else the whole section TRACELET_MLFLOW
        if (found := _find(variables, _variable(*loc[:cut]))) is not None:
            inside = _inside(loc[cut:]).removeprefix(".")
            return f"{found.name}={found.value!r} ({found.where}): {inside + ': ' if inside else ''}{message}"
    return f"{_variable(*loc[:depth])}={error.get('input')!r}: {message}"


def _inside(parts: list[str]) -> str:
    """Where in a value an error is: ``[0]`` for a list item, ``.name`` for a key."""
    return "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in parts)


def _describe_unparsable(exc: SettingsError, variables: list[_SourcedValue]) -> str:
    """A backend section given as one variable that is not JSON (pydantic-settings names only the field)."""
    match = re.search(r'field "(\w+)"', str(exc))
    found = _find(variables, _variable(match[1])) if match else None
    if found is None:
        return f"Invalid Tracelet configuration: {exc}"
    return (
        f"Invalid Tracelet configuration: {found.name}={found.value!r} ({found.where}): not valid JSON "
        f"({exc.__cause__}); give a JSON object, or one {found.name.upper()}__<OPTION> variable per option"
    )
