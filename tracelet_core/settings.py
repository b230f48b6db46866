"""Tracelet's configuration: one pydantic-settings model, read from arguments, ``TRACELET_*`` and ``.env``.

Precedence (highest first): constructor arguments, ``TRACELET_*`` environment variables, a ``.env``
file in the working directory, each tracker SDK's own variables (``MLFLOW_TRACKING_URI``,
``WANDB_PROJECT``, ...), then the defaults below. A field left ``None`` means "let the tracker's SDK
decide", which is how the SDK's own variables keep working.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tracelet_core.errors import ConfigurationError

__all__ = [
    "AimOptions",
    "ClearMLOptions",
    "MlflowOptions",
    "TraceletSettings",
    "WandbOptions",
    "load_settings",
]

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


class MlflowOptions(BaseModel):
    """Options of the MLflow backend (``TRACELET_MLFLOW__<FIELD>``)."""

    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI. Unset: MLFLOW_TRACKING_URI, else MLflow's own default "
        "(a SQLite file mlflow.db in the working directory).",
    )
    artifact_location: str | None = Field(
        None, description="Artifact location for experiments Tracelet creates (MLflow's default if unset)."
    )
    http_timeout: float = Field(
        30.0, gt=0, description="Seconds one HTTP request to a tracking server may take before it is retried."
    )


class WandbOptions(BaseModel):
    """Options of the Weights & Biases backend (``TRACELET_WANDB__<FIELD>``)."""

    project: str | None = Field(None, description="W&B project. Unset: WANDB_PROJECT, else the experiment name.")
    entity: str | None = Field(None, description="W&B entity (user or team). Unset: WANDB_ENTITY or your default.")
    group: str | None = Field(None, description="W&B run group. Unset: WANDB_RUN_GROUP.")
    job_type: str | None = Field(None, description="W&B job type. Unset: WANDB_JOB_TYPE.")
    mode: Literal["online", "offline", "disabled"] | None = Field(
        None, description="W&B mode. Unset: WANDB_MODE, else online."
    )
    dir: str | None = Field(None, description="Directory W&B writes its run files to. Unset: WANDB_DIR or cwd.")


class ClearMLOptions(BaseModel):
    """Options of the ClearML backend (``TRACELET_CLEARML__<FIELD>``)."""

    project: str | None = Field(None, description="ClearML project. Unset: the experiment name.")
    offline: bool | None = Field(
        None, description="Run ClearML in offline mode. Unset: CLEARML_OFFLINE_MODE, else online."
    )
    task_type: str = Field("training", description="ClearML task type.")


class AimOptions(BaseModel):
    """Options of the Aim backend (``TRACELET_AIM__<FIELD>``)."""

    repo: str | None = Field(None, description="Aim repository path or URL. Unset: Aim's default (.aim in cwd).")
    artifacts_uri: str | None = Field(
        None,
        description="Where Aim copies logged files (file:// or s3:// URI). Unset: file://<repo>/aim-artifacts for "
        "a local repo; a remote (aim://) repo needs one, else files stay local.",
    )


class TraceletSettings(BaseSettings):
    """Everything Tracelet can be told, with where each value may come from.

    Example:
        >>> s = TraceletSettings(backends=["mlflow"], tags={"team": "vision"})
        >>> s.backends, s.tags
        (['mlflow'], {'team': 'vision'})
    """

    model_config = SettingsConfigDict(
        env_prefix="TRACELET_",
        env_nested_delimiter="__",
        env_file=".env",
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
    mlflow: MlflowOptions = Field(default_factory=MlflowOptions, description="MLflow backend options.")
    wandb: WandbOptions = Field(default_factory=WandbOptions, description="W&B backend options.")
    clearml: ClearMLOptions = Field(default_factory=ClearMLOptions, description="ClearML backend options.")
    aim: AimOptions = Field(default_factory=AimOptions, description="Aim backend options.")

    @field_validator("backends")
    @classmethod
    def _known_backends(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        from tracelet_core.backends import available_backend_names, is_import_path

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
        """The options section of one backend as a plain dict (empty for third-party backends)."""
        section = getattr(self, name, None)
        return section.model_dump() if isinstance(section, BaseModel) else {}


def load_settings(settings: TraceletSettings | None = None, **overrides: Any) -> TraceletSettings:
    """Build the settings for a run, turning validation errors into one readable message.

    Args:
        settings: a ready settings object; ``overrides`` are applied on top of it.
        **overrides: constructor-level values; ``None`` values are ignored so that "not given"
            falls through to the environment.

    Returns:
        The validated settings.

    Raises:
        ConfigurationError: a value is invalid; the message names the variable, the value and what
            is allowed.

    Example:
        >>> load_settings(experiment="digits").experiment
        'digits'
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        if settings is None:
            return TraceletSettings(**given)
        if not given:
            return settings
        merged = settings.model_dump(exclude_unset=True) | given
        return TraceletSettings(**merged)
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        variable = "TRACELET_" + "__".join(part.upper() for part in loc) if loc else "settings"
        value = err.get("input")
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"{variable}={value!r}: {message}")
    return "Invalid Tracelet configuration: " + "; ".join(lines)
