"""The Weights & Biases tracker's settings section: ``TRACELET_WANDB__<OPTION>``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["WandbOptions"]


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
