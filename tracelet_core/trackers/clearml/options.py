"""The ClearML tracker's settings section: ``TRACELET_CLEARML__<OPTION>``."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["ClearMLOptions"]


class ClearMLOptions(BaseModel):
    """Options of the ClearML backend (``TRACELET_CLEARML__<FIELD>``)."""

    project: str | None = Field(None, description="ClearML project. Unset: the experiment name.")
    offline: bool | None = Field(
        None, description="Run ClearML in offline mode. Unset: CLEARML_OFFLINE_MODE, else online."
    )
    task_type: str = Field("training", description="ClearML task type.")
