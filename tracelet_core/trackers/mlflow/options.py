"""The MLflow tracker's settings section: ``TRACELET_MLFLOW__<OPTION>``."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["MlflowOptions"]


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
