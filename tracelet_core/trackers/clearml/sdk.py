"""The process-wide ClearML SDK settings Tracelet needs before ``Task.init`` (see the backend's docstring):
made in Tracelet's delivery process; with ``TRACELET_DELIVERY=thread``, in the user's process, with a warning.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clearml import Task

__all__ = ["NO_AUTO_CONNECT", "offline_from_env", "prepare_sdk"]

# Every binding Task.init knows in clearml 2.1, off. A dict (not False) is needed to also turn off
# repository detection; a key missing from it would default to on.
NO_AUTO_CONNECT: dict[str, bool] = dict.fromkeys(
    [
        "hydra", "scikit", "joblib", "matplotlib", "tensorflow", "tensorboard", "tfdefines", "pytorch",
        "megengine", "xgboost", "catboost", "fastai", "lightgbm", "gradio", "detect_repository",
    ],
    False,
)  # fmt: skip


def offline_from_env() -> bool:
    from clearml.backend_api.session.defs import ENV_OFFLINE_MODE

    return bool(ENV_OFFLINE_MODE.get(default=False))


def prepare_sdk(task_cls: type[Task]) -> None:
    """Process-wide SDK settings Tracelet needs before ``Task.init`` (see the module docstring)."""
    from clearml.backend_interface.task.development.stop_signal import TaskStopSignal
    from clearml.utilities.check_updates import CheckPackageUpdates

    # Both are lazily-read config values (LazyEvalWrapper) that ClearML only tests for truth;
    # a plain bool in their place is read the same way, whenever the config was loaded.
    task_cls._report_subprocess_enabled = False  # type: ignore[assignment]
    # ClearML marks the processes a task starts with CLEARML_PROC_MASTER_ID, and Task.init in such a
    # process returns a do-nothing stub. An inherited mark (a user's own ClearML task, an earlier
    # Tracelet run in the parent process) must not silence this run.
    for variable in ("CLEARML_PROC_MASTER_ID", "TRAINS_PROC_MASTER_ID"):
        os.environ.pop(variable, None)
    CheckPackageUpdates._package_version_checked = True
    TaskStopSignal.enabled = False  # type: ignore[assignment]
    task_cls.set_random_seed(None)
