"""Tracelet's configuration: one pydantic-settings model, read from arguments, ``TRACELET_*`` and ``.env``.

Precedence (highest first): constructor arguments, ``TRACELET_*`` environment variables, a ``.env``
file in the working directory, each tracker SDK's own variables (``MLFLOW_TRACKING_URI``,
``WANDB_PROJECT``, ...), then the defaults below. A field left ``None`` means "let the tracker's SDK
decide", which is how the SDK's own variables keep working.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from tracelet_core.errors import ConfigurationError
from tracelet_core.normalize import DEFAULT_SECRET_PARAMS
from tracelet_core.settings_sources import (
    ENV_FILE,
    ENV_PREFIX,
    INTERNAL_VARIABLES,
    NESTED_DELIMITER,
    closest,
    describe,
    describe_unparsable,
    read_variables,
    variable_name,
    warn_unknown_variables,
)
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

CheckpointPolicy = Literal["none", "last", "best", "all"]
DeliveryMode = Literal["process", "thread"]
TrackerErrorPolicy = Literal["warn", "raise"]


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
    on_tracker_error: TrackerErrorPolicy = Field(
        "warn",
        description="What a tracker that cannot be used at the run's start does (a wrong or unreachable URI, "
        "a missing API key): warn: one warning, training goes on and the events wait in the journal for "
        "`tracelet sync`; raise: the run's start (start_logging, or Trainer.fit before its first training "
        "step) waits for every tracker to open its run and raises TrackerConfigurationError, naming the "
        "tracker and where it points, if one cannot (an unreachable tracker after a few seconds of retries).",
    )
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
            f"{variable_name(name, *map(str, error['loc']))}={error.get('input')!r}: {error['msg']}"
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
    variables = read_variables()
    warn_unknown_variables(variables, TraceletSettings)
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
        raise ConfigurationError(describe(exc, given, variables, TraceletSettings)) from None
    except SettingsError as exc:  # a backend section's variable is not valid JSON
        raise ConfigurationError(describe_unparsable(exc, variables)) from None


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
        hint = closest(name, allowed)
        problems.append(f"{name!r} (did you mean {hint!r}?)" if hint else repr(name))
    what = "an unexpected keyword argument" if len(unknown) == 1 else "unexpected keyword arguments"
    raise TypeError(f"{function.__name__}() got {what} {', '.join(problems)}; allowed: {', '.join(allowed)}")
