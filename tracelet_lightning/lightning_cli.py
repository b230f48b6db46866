"""LightningCLI, as ``TraceletLogger`` sees it: the run's resolved configuration, and the ``config.yaml``
that Lightning's ``SaveConfigCallback`` writes.

Only a LightningCLI run has a ``SaveConfigCallback``; ``lightning.pytorch.cli`` (which needs
jsonargparse) is never imported here, only looked up when the program has imported it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracelet_core.errors import warn_once

if TYPE_CHECKING:
    from lightning.pytorch import Trainer

__all__ = ["CLI_HPARAMS", "cli_config", "move_saved_config", "trainer_of"]

# Hyperparameters LightningCLI adds for its own bookkeeping; `_instantiator` also tells a CLI run apart.
CLI_HPARAMS = ("_instantiator", "_class_path")


def trainer_of(model: Any) -> Trainer | None:
    """The Trainer a LightningModule is attached to, or None."""
    try:
        trainer = model.trainer
    except (AttributeError, RuntimeError):  # not a LightningModule, or not attached
        return None
    from lightning.pytorch import Trainer

    return trainer if isinstance(trainer, Trainer) else None


def cli_config(trainer: Trainer) -> dict[str, Any] | None:
    """The resolved LightningCLI configuration of this run, as plain data, or None outside the CLI."""
    callback = _save_config_callback(trainer)
    if callback is None:
        return None
    import yaml

    try:
        loaded = yaml.safe_load(callback.parser.dump(callback.config, skip_none=False))
    except Exception as exc:  # the config is a nice-to-have; never stop training for it
        warn_once("cli-config", f"Tracelet could not record the LightningCLI configuration: {exc}")
        return None
    return loaded if isinstance(loaded, dict) else None


def move_saved_config(trainer: Trainer, save_dir: Path, log_dir: Path) -> None:
    """Move the file SaveConfigCallback wrote into ``save_dir`` (shared by every run) to ``log_dir``.

    Lightning writes it to ``trainer.log_dir``, which is the first logger's ``save_dir`` for
    loggers other than TensorBoard and CSV, and refuses to start when it already exists.
    """
    callback = _save_config_callback(trainer)
    if callback is None or not getattr(callback, "save_to_log_dir", False):
        return
    filename = str(getattr(callback, "config_filename", "config.yaml"))
    source, target = save_dir / filename, log_dir / filename
    if source.is_file() and source != target:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        except OSError as exc:
            warn_once("cli-config-move", f"Tracelet could not move {source} into the run directory: {exc}")


def _save_config_callback(trainer: Trainer) -> Any:
    cli = sys.modules.get("lightning.pytorch.cli")
    if cli is None:
        return None
    callbacks: list[Any] = getattr(trainer, "callbacks", [])
    return next((cb for cb in callbacks if isinstance(cb, cli.SaveConfigCallback)), None)
