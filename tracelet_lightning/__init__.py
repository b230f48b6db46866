"""Tracelet for PyTorch Lightning: ``TraceletLogger`` and ``TraceletCallback``."""

from tracelet_lightning import tensorboard as _tensorboard  # noqa: F401 - registers the TensorBoard bridge's Lightning rule
from tracelet_lightning.callback import TraceletCallback
from tracelet_lightning.checkpoints import checkpoint_run_id
from tracelet_lightning.logger import TraceletLogger

__all__ = ["TraceletCallback", "TraceletLogger", "checkpoint_run_id"]
