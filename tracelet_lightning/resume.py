"""Which Tracelet run a fit records into when it resumes from a checkpoint: the run the checkpoint names.

``TraceletCallback`` stores its run in every checkpoint (a :class:`CheckpointRun`). When Lightning
loads one, the fit continues that run, whoever owns the logger:

* the callback's own logger (none in the Trainer) is created for the checkpoint's run, with the
  journal directory the checkpoint names when the run's journal is not in the configured one;
* the Trainer's ``TraceletLogger`` is switched to the checkpoint's run (:func:`continue_in`) if its
  own run has recorded nothing yet (Lightning creates a logger's run before it loads a checkpoint),
  and ``ModelCheckpoint``'s default directory follows it; otherwise :func:`warn_not_continued` says
  how to continue the checkpoint's run.

Each tracker continues its own run: the journal knows its run id, or else the checkpoint does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning.pytorch.callbacks import ModelCheckpoint

from tracelet_core.errors import warn_once
from tracelet_core.pipeline.files import JOURNAL_FILENAME
from tracelet_core.settings import TraceletSettings, load_settings

if TYPE_CHECKING:
    from tracelet_lightning.logger import TraceletLogger

__all__ = ["CheckpointRun", "checkpoint_dir", "continue_in", "warn_not_continued"]


@dataclass(frozen=True)
class CheckpointRun:
    """The Tracelet run a checkpoint names: what ``TraceletCallback.state_dict`` stores in it.

    Attributes:
        run_id: Tracelet's id of the run.
        experiment: its experiment.
        journal_dir: the journal directory it was recorded in (on the machine that wrote the checkpoint).
        backend_run_ids: each tracker's own id of the run, as far as known when the checkpoint was written.

    Example:
        >>> run = CheckpointRun.from_state({"run_id": "3f2a", "experiment": "digits"})
        >>> run.run_id, run.backend_run_ids, CheckpointRun.from_state({}) is None
        ('3f2a', {}, True)
    """

    run_id: str
    experiment: str | None = None
    journal_dir: str | None = None
    backend_run_ids: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> CheckpointRun | None:
        """Read the callback's state in a checkpoint; None when it names no run."""
        run_id = state.get("run_id")
        if not run_id:
            return None
        experiment, journal_dir = state.get("experiment"), state.get("journal_dir")
        return cls(
            str(run_id),
            str(experiment) if experiment else None,
            str(journal_dir) if journal_dir else None,
            {str(k): str(v) for k, v in (state.get("backend_run_ids") or {}).items()},
        )

    def state(self) -> dict[str, Any]:
        """The callback's state to store in a checkpoint."""
        return {
            "run_id": self.run_id,
            "experiment": self.experiment,
            "journal_dir": self.journal_dir,
            "backend_run_ids": dict(self.backend_run_ids),
        }

    def location(self, settings: TraceletSettings) -> tuple[Path, str]:
        """The journal directory and experiment of this run: ``settings``' directory when the run's journal
        is there, else the checkpoint's when it is there; the checkpoint's experiment, else ``settings``'."""
        journal_dir = Path(settings.journal_dir).resolve()
        stored = Path(self.journal_dir) if self.journal_dir else None
        if stored is not None and not _has_journal(journal_dir, self.run_id) and _has_journal(stored, self.run_id):
            journal_dir = stored
        return journal_dir, self.experiment or settings.experiment

    def settings_for(self, settings: TraceletSettings) -> TraceletSettings:
        """``settings`` pointed at this run's journal directory and experiment (see :meth:`location`)."""
        journal_dir, experiment = self.location(settings)
        return load_settings(settings, journal_dir=journal_dir, experiment=experiment)


def continue_in(logger: TraceletLogger, run: CheckpointRun) -> None:
    """Switch the Trainer's ``logger`` to the checkpoint's ``run`` if it has recorded nothing yet; a
    ``ModelCheckpoint`` writing into the logger's default checkpoint directory follows it there.

    Called on every rank, so that the logger's version (and the checkpoint directory) agree across ranks.
    """
    if run.run_id == logger.version:
        return
    before = checkpoint_dir(logger)
    journal_dir, experiment = run.location(logger.settings)
    if not logger.continue_run(run.run_id, journal_dir, experiment, run.backend_run_ids):
        return
    trainer = logger.trainer
    for saver in trainer.checkpoint_callbacks if trainer is not None else ():
        # ModelCheckpoint resolved its default directory from the logger's first run at setup;
        # it follows the logger to the checkpoint's run (and then finds its own state there).
        if isinstance(saver, ModelCheckpoint) and saver.dirpath and _same_dir(saver.dirpath, before):
            saver.dirpath = checkpoint_dir(logger)


def warn_not_continued(logger: TraceletLogger, run: CheckpointRun) -> None:
    """Say, once, that this fit records into the logger's run rather than the checkpoint's, and how to
    continue the checkpoint's run next time (nothing when they are the same run)."""
    if run.run_id == logger.version:
        return
    warn_once(
        f"resume-mismatch:{run.run_id}",
        f"The checkpoint belongs to Tracelet run {run.run_id}, but the Trainer's TraceletLogger had already "
        f"started run {logger.version} before Lightning loaded it, so this fit is recorded there. "
        f"To continue run {run.run_id}, create the logger with TraceletLogger(run_id={run.run_id!r}) "
        "(tracelet_lightning.checkpoint_run_id(path) reads it from a checkpoint).",
    )


def checkpoint_dir(logger: TraceletLogger) -> str:
    """Where ``ModelCheckpoint`` puts its files by default when ``logger`` is the Trainer's first logger."""
    return os.path.join(logger.save_dir, str(logger.name), logger.version, "checkpoints")


def _has_journal(journal_dir: Path, run_id: str) -> bool:
    return next(journal_dir.glob(f"*/{run_id}/{JOURNAL_FILENAME}"), None) is not None


def _same_dir(first: str | os.PathLike[str], second: str) -> bool:
    return os.path.realpath(first) == os.path.realpath(second)
