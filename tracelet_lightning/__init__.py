"""Tracelet for PyTorch Lightning: ``Trainer(logger=TraceletLogger())``."""

from tracelet_lightning.logger import TraceletLogger

__all__ = ["TraceletLogger"]
