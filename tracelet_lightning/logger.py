"""``TraceletLogger``: Lightning's Logger interface on top of a Tracelet run.

It only translates Lightning's public hooks into :class:`tracelet_core.Run` calls; the run does
the rest (journal, delivery to the trackers, collectors). Every write is an enqueue, so
``self.log`` costs the training loop microseconds, whatever the trackers.
"""

from __future__ import annotations

import uuid
import weakref
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lightning.fabric.utilities.logger import _add_prefix
from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only
from typing_extensions import override

from tracelet_core.active import clear_active_run
from tracelet_core.api import start_run
from tracelet_core.errors import TrackerConfigurationError
from tracelet_core.pipeline.recording import prelaunch_delivery
from tracelet_core.pipeline.report import DeliveryReport
from tracelet_core.run import Run, check_run_free, run_directory
from tracelet_core.settings import TraceletSettings, load_settings
from tracelet_lightning.checkpoints import CheckpointUploader
from tracelet_lightning.lightning_cli import CLI_HPARAMS, cli_config, move_saved_config, trainer_of

if TYPE_CHECKING:
    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch import Tensor
    from torch.nn import Module

__all__ = ["TraceletLogger"]

_STATUS = {"success": "FINISHED", "failed": "FAILED", "finished": "KILLED"}


class TraceletLogger(Logger):
    """Track a Lightning run in MLflow, W&B, ClearML and Aim (one or several) with one line.

    Arguments left as ``None`` come from ``TRACELET_*`` environment variables, a ``.env`` file or
    Tracelet's defaults (MLflow when it is installed, else the local journal alone).

    Under LightningCLI the whole resolved configuration is recorded (flattened as params, whole as
    ``tracelet/config.yaml``) instead of the module's hyperparameters, and the ``config.yaml`` that
    Lightning's ``SaveConfigCallback`` writes into ``save_dir`` is moved into the run's own
    directory (``log_dir``), so the next run in the same directory does not trip over it.

    Args:
        experiment: experiment (MLflow) / project (W&B, ClearML, Aim) name.
        run_name: display name of the run.
        backends: trackers to send to, e.g. ``["mlflow", "aim"]``.
        tags: run tags.
        log_checkpoints: which checkpoints to upload: ``none``, ``last``, ``best`` or ``all``.
        run_id: resume this Tracelet run (its id is in the checkpoint and in ``tracelet runs``).
        journal_dir: where the run's journal (and Lightning's checkpoints, by default) are kept.
        prefix: a string put before every metric key.
        delivery: ``process`` (default) or ``thread``.
        system_metrics: record CPU, memory, disk, network and GPU load.
        system_metrics_interval: seconds between two system metric points.
        on_tracker_error: what a tracker that cannot be used does: ``warn`` (default: one warning, training
            goes on, its events wait in the journal for ``tracelet sync``) or ``raise`` (``fit`` waits, before
            its first training step, for every tracker to open its run, and fails if one cannot).

    Raises:
        ConfigurationError: a setting is invalid (raised here, before training starts).
        RunInUseError: ``run_id`` names a run another live process is recording.
        TrackerConfigurationError: with ``on_tracker_error="raise"``, from ``fit`` before its first training
            step: a tracker refused to open, stayed unreachable, or did not open in time (the message names
            it and where it points).

    Example::

        trainer = Trainer(logger=TraceletLogger())
        trainer = Trainer(logger=TraceletLogger(experiment="digits", backends=["mlflow", "aim"],
                                                tags={"team": "vision"}, log_checkpoints="best"))
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        experiment: str | None = None,
        run_name: str | None = None,
        backends: list[str] | None = None,
        tags: dict[str, str] | None = None,
        log_checkpoints: Literal["none", "last", "best", "all"] | None = None,
        run_id: str | None = None,
        journal_dir: str | None = None,
        prefix: str = "",
        delivery: Literal["process", "thread"] | None = None,
        system_metrics: bool | None = None,
        system_metrics_interval: float | None = None,
        on_tracker_error: Literal["warn", "raise"] | None = None,
    ) -> None:
        super().__init__()
        settings = load_settings(
            experiment=experiment,
            run_name=run_name,
            backends=backends,
            tags=tags,
            log_checkpoints=log_checkpoints,
            journal_dir=journal_dir,
            delivery=delivery,
            system_metrics=system_metrics,
            system_metrics_interval=system_metrics_interval,
            on_tracker_error=on_tracker_error,
        )
        if run_id is not None:
            check_run_free(run_id, run_directory(settings, run_id))
        self._configure(settings, run_id, prefix)

    @classmethod
    def from_settings(
        cls, settings: TraceletSettings, run_id: str | None = None, native_ids: Mapping[str, str] | None = None
    ) -> TraceletLogger:
        """A logger for already-resolved settings (what ``TraceletCallback`` adds to a Trainer).

        Args:
            settings: the run's settings (from :func:`tracelet_core.settings.load_settings`).
            run_id: the Tracelet run to record into (continue); default: a new one.
            native_ids: each tracker's run id to continue when the run's journal is not here (a
                checkpoint made on another machine names them).
        """
        logger = cls.__new__(cls)
        Logger.__init__(logger)
        logger._configure(settings, run_id, "", native_ids)
        return logger

    def _configure(
        self, settings: TraceletSettings, run_id: str | None, prefix: str, native_ids: Mapping[str, str] | None = None
    ) -> None:
        self._settings = settings
        self._run_id = run_id or uuid.uuid4().hex
        self._prefix = prefix
        self._run: Run | None = None
        self._last_epoch: Any = None
        self._last_step: int | None = None
        self._report: DeliveryReport | None = None
        self._native_ids = dict(native_ids or {})
        self._checkpoints = CheckpointUploader(settings.log_checkpoints)
        self._trainer_ref: weakref.ReferenceType[Trainer] | None = None
        self._pending_hparams: dict[str, Any] | None = None
        self._cli_config_logged = False
        if getattr(rank_zero_only, "rank", 0) == 0:
            # The trackers' SDKs are imported while the Trainer sets up, not at the end of a short run.
            prelaunch_delivery(settings)

    # -- identity -------------------------------------------------------------------------------

    @property
    @override
    def name(self) -> str:
        """The experiment name."""
        return self._settings.experiment

    @property
    @override
    def version(self) -> str:
        """Tracelet's run id (the same on every rank)."""
        return self._run_id

    @property
    @override
    def save_dir(self) -> str:
        """The journal directory: Lightning puts checkpoints under ``save_dir/name/version``."""
        return str(Path(self._settings.journal_dir).resolve())

    @property
    @override
    def log_dir(self) -> str:
        """The run's own directory (journal, delivery log, checkpoints)."""
        return str(run_directory(self._settings, self._run_id))

    @property
    def settings(self) -> TraceletSettings:
        """The resolved settings this logger runs with."""
        return self._settings

    @property
    def report(self) -> DeliveryReport | None:
        """What the trackers received, as of the last ``finalize`` (None before the first)."""
        return self._report

    @property
    @rank_zero_experiment
    def experiment(self) -> Run:
        """The Tracelet :class:`~tracelet_core.Run`, started on first use (rank zero only).

        After ``finalize`` (end of ``fit``), using it again continues the same run, so ``fit`` then
        ``test`` with one logger makes one run.
        """
        if self._run is None:
            # Deferred: opened at its first use. Lightning touches `experiment` while setting up, before
            # it loads a checkpoint; TraceletCallback may then switch this logger to the checkpoint's run.
            self._run = start_run(self._settings, self._run_id, self._native_ids or None, deferred=True)
        return self._run

    @property
    def run(self) -> Run | None:
        """The run, once :attr:`experiment` has created it; None before that, after ``finalize`` and on
        ranks other than zero. Unlike ``experiment``, it never creates one."""
        return self._run

    @property
    def trainer(self) -> Trainer | None:
        """The Trainer given to :meth:`attach_trainer` (held weakly: None once it is gone)."""
        return self._trainer_ref() if self._trainer_ref is not None else None

    def open_run(self) -> Run:
        """Open the run now, if it is still deferred: its journal and delivery start, so the trackers open
        their runs while training runs rather than at its end.

        Lightning's ``fit`` calls this (through ``log_hyperparams``/``log_graph``, after it restored any
        checkpoint); so does ``TraceletCallback.on_fit_start``.

        Raises:
            TrackerConfigurationError: with ``on_tracker_error="raise"``, a tracker cannot open its run; the
                logger then holds no run (a later use starts a new one).
        """
        run = self.experiment
        if run.deferred:
            try:
                run.flush()  # the run's first use starts it
            except TrackerConfigurationError:
                self._run, self._pending_hparams = None, None
                clear_active_run(run)
                raise
        return run

    def continue_run(self, run_id: str, journal_dir: Path, experiment: str, native_ids: Mapping[str, str]) -> bool:
        """Record into ``run_id`` (e.g. the run a checkpoint names) instead, if this logger's own run has
        recorded nothing yet; its ``version`` and ``log_dir`` then name ``run_id``.

        Args:
            run_id: the Tracelet run to continue.
            journal_dir: where its journal is.
            experiment: its experiment.
            native_ids: each tracker's run id, for trackers the journal here does not know.

        Returns:
            True when the logger switched; False, changing nothing, once its run has recorded anything.
        """
        run = self._run
        if run is not None and not run.deferred:
            return False
        base = run.settings if run is not None else self._settings  # with the callback's collector options
        if run is not None:
            clear_active_run(run)
        self._settings = load_settings(base, journal_dir=journal_dir, experiment=experiment)
        self._run_id, self._run, self._native_ids = run_id, None, dict(native_ids)
        return True

    # -- hooks ----------------------------------------------------------------------------------

    @override
    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace | Any, *args: Any, **kwargs: Any) -> None:
        """Record hyperparameters (dict, Namespace, dataclass, nested): flattened as params and whole as
        ``tracelet/config.yaml``."""
        if isinstance(params, Namespace):
            params = vars(params)
        if isinstance(params, Mapping):
            from_cli = "_instantiator" in params
            params = {k: v for k, v in params.items() if k not in CLI_HPARAMS}
            if from_cli:
                # LightningCLI: the whole config, which holds these, comes with log_graph right after.
                if not self._cli_config_logged:
                    self._pending_hparams = params
                return
        self.open_run().log_params(params)

    @override
    @rank_zero_only
    def log_graph(self, model: Module, input_array: Tensor | None = None) -> None:
        """Called by Lightning once per stage, right after ``log_hyperparams``: records the LightningCLI
        configuration when there is one (no graph is recorded)."""
        self.open_run()
        trainer = trainer_of(model)
        if trainer is not None:
            self.attach_trainer(trainer)
            if not self._cli_config_logged and (config := cli_config(trainer)) is not None:
                self.experiment.log_params(config)
                self._cli_config_logged = True
                self._pending_hparams = None
                if trainer.loggers and trainer.loggers[0] is self:
                    move_saved_config(trainer, Path(self.save_dir), Path(self.log_dir))
        self._flush_pending_hparams()

    @override
    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record metrics at Lightning's global step; ``epoch`` is recorded once per change."""
        run = self._run if self._run is not None else self.experiment
        if run.deferred:
            run = self.open_run()
        if self._pending_hparams is not None:
            self._flush_pending_hparams()
        if "epoch" in metrics:
            epoch = metrics["epoch"]
            if epoch == self._last_epoch:
                metrics = {k: v for k, v in metrics.items() if k != "epoch"}
            else:
                self._last_epoch = epoch
        if self._prefix:
            metrics = _add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR)
        self._last_step = step
        run.log_metrics(metrics, step=step)

    @override
    def save(self) -> None:
        """Nothing to do: the run's writer thread flushes on its own schedule."""

    @override
    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        """Hand the checkpoint just written to the run, per ``log_checkpoints`` (the upload happens later,
        in the delivery process); see :mod:`tracelet_lightning.checkpoints` for names and metadata."""
        if self._settings.log_checkpoints == "none":
            return
        epoch = int(self._last_epoch) if self._last_epoch is not None else None
        self._checkpoints(self.experiment, checkpoint_callback, self.trainer, (epoch, self._last_step))

    @override
    @rank_zero_only
    def finalize(self, status: str) -> None:
        """End the run: ``success`` → FINISHED, ``failed`` → FAILED, ``finished`` (requeue) → KILLED."""
        if self._pending_hparams is not None:
            self._flush_pending_hparams()
        if self._run is None:
            return
        run, self._run = self._run, None
        self._report = run.finish(_STATUS.get(status, "FINISHED"))  # type: ignore[arg-type]

    def attach_trainer(self, trainer: Trainer) -> None:
        """Remember the Trainer (weakly) for checkpoint names; called by Lightning's hooks and ``TraceletCallback``."""
        if self._trainer_ref is None or self._trainer_ref() is not trainer:
            self._trainer_ref = weakref.ref(trainer)
            self._checkpoints.configure(trainer)

    # -- media, for LightningModules through self.logger -----------------------------------------

    @rank_zero_only
    def log_image(self, key: str, image: Any, step: int | None = None) -> None:
        """Record an image (path, PIL image, array or tensor in HW/HWC/CHW, matplotlib figure)."""
        self.experiment.log_image(key, image, step)

    @rank_zero_only
    def log_histogram(self, key: str, values: Any, step: int | None = None) -> None:
        """Record the distribution of ``values`` at ``step``."""
        self.experiment.log_histogram(key, values, step)

    @rank_zero_only
    def log_text(self, key: str, text: str, step: int | None = None) -> None:
        """Record a text at ``step``."""
        self.experiment.log_text(key, text, step)

    @rank_zero_only
    def log_figure(self, key: str, figure: Any, step: int | None = None, close: bool = True) -> None:
        """Record a matplotlib figure as an image; closes it unless ``close=False``."""
        self.experiment.log_image(key, figure, step)
        if close:
            import matplotlib.pyplot as plt

            plt.close(figure)

    # -- internals ------------------------------------------------------------------------------

    def _flush_pending_hparams(self) -> None:
        pending, self._pending_hparams = self._pending_hparams, None
        if pending:
            self.experiment.log_params(pending)

    # -- pickling for spawn ---------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_run"] = None  # live threads and handles stay in the process that made them
        state["_trainer_ref"] = None
        return state
