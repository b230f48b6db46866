"""Tracelet core: framework-free experiment tracking to MLflow, W&B, ClearML and Aim.

Importing this package loads neither Lightning, torch nor any tracker SDK.

Example:
    >>> import tracelet_core, tempfile
    >>> with tracelet_core.start_logging("demo", backends=[], journal_dir=tempfile.mkdtemp(),
    ...                                  system_metrics=False, git=False, environment=False) as run:
    ...     run.log_params({"optimizer": {"lr": 0.01}})
    ...     run.log_metric("loss", 0.5, step=0)
"""

from tracelet_core._logging import configure_default_logging
from tracelet_core.api import get_active_run, start_logging, stop_logging
from tracelet_core.collectors import Collected, Collector, register_collector
from tracelet_core.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    ErrorKind,
    JournalError,
    PermanentDeliveryError,
    RunInUseError,
    TraceletError,
    TraceletWarning,
    TrackerConfigurationError,
)
from tracelet_core.events import ArtifactRef, Batch, MediaItem, MetricPoint, RunInfo, RunStatus
from tracelet_core.pipeline.report import BackendReport, DeliveryReport
from tracelet_core.run import Run
from tracelet_core.settings import TraceletSettings
from tracelet_core.tensorboard import TensorBoardPatch, patch_tensorboard, unpatch_tensorboard
from tracelet_core.trackers import Tracker, register_backend, register_tracker
from tracelet_core.trackers.base import Backend, Capabilities

__version__ = "0.1.0"

__all__ = [
    "ArtifactRef",
    "Backend",
    "BackendError",
    "BackendReport",
    "BackendUnavailableError",
    "Batch",
    "Capabilities",
    "Collected",
    "Collector",
    "ConfigurationError",
    "DeliveryReport",
    "ErrorKind",
    "JournalError",
    "MediaItem",
    "MetricPoint",
    "PermanentDeliveryError",
    "Run",
    "RunInUseError",
    "RunInfo",
    "RunStatus",
    "TensorBoardPatch",
    "TraceletError",
    "TraceletSettings",
    "TraceletWarning",
    "Tracker",
    "TrackerConfigurationError",
    "__version__",
    "get_active_run",
    "patch_tensorboard",
    "register_backend",
    "register_collector",
    "register_tracker",
    "start_logging",
    "stop_logging",
    "unpatch_tensorboard",
]

configure_default_logging()
