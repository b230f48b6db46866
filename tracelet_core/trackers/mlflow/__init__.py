"""MLflow: a tracking store (SQLite file, a server, Databricks...) that runs are sent to and read from."""

from __future__ import annotations

from tracelet_core.trackers.descriptor import Tracker
from tracelet_core.trackers.mlflow.options import MlflowOptions

TRACKER = Tracker(
    name="mlflow",
    backend="tracelet_core.trackers.mlflow.backend:MlflowBackend",
    reader="tracelet_core.trackers.mlflow.reader:MlflowReader",
    options=MlflowOptions,
    doctor="tracelet_core.trackers.mlflow.doctor:check",
    destination="tracelet_core.trackers.mlflow.reader:destination",
    sdk="mlflow",
    min_version="2.16",
    extra="mlflow",
    sdk_variables={"tracking_uri": "MLFLOW_TRACKING_URI"},
    description="MLflow tracking (SQLite store, tracking server, Databricks)",
)
