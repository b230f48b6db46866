"""``TraceletCallback``: track a Lightning run from one callback, with any logger or none.

With a :class:`~tracelet_lightning.TraceletLogger` in the Trainer the callback attaches to that
logger's run. Without one, it adds a ``TraceletLogger`` of its own to ``trainer.loggers`` when
``fit`` starts (after Lightning has restored a checkpoint, so a resumed fit continues the run the
checkpoint names), so what the module logs reaches Tracelet at Lightning's cadence and steps, and
the logger's ``finalize`` records the run's status, exactly as when the logger is given.

Either way the callback adds what a Logger never sees: each optimizer's learning rates, epoch
time and throughput, the model's size and summary, the early-stopping outcome, per-node system
load in distributed runs, and Tracelet's run id in every checkpoint (see :meth:`state_dict`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only
from typing_extensions import override

from tracelet_core.errors import warn_once
from tracelet_core.settings import TraceletSettings, load_settings
from tracelet_lightning.checkpoints import CALLBACK_STATE_KEY
from tracelet_lightning.logger import TraceletLogger
from tracelet_lightning.model_info import batch_size, learning_rates, record_model_summary
from tracelet_lightning.resume import CheckpointRun, continue_in, warn_not_continued

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule, Trainer


__all__ = ["TraceletCallback"]

_NODE_FIELDS = 6  # node rank, is local rank 0, cpu %, memory %, memory used MB, process RSS MB
_COLLECTOR_OPTIONS = ("system_metrics", "system_metrics_interval")


class TraceletCallback(Callback):
    """Track a Lightning run with Tracelet from one callback: ``Trainer(callbacks=[TraceletCallback()])``.

    The run options (``experiment`` ... ``system_metrics_interval``) apply to the run the callback
    opens itself. With a ``TraceletLogger`` in the Trainer the run is the logger's and so are its
    options, except ``system_metrics`` and ``system_metrics_interval``: given here, they apply to
    the logger's run too (as in ``examples/config.yaml``).

    Args:
        experiment: experiment (MLflow) / project (W&B, ClearML, Aim) name.
        run_name: display name of the run.
        backends: trackers to send to, e.g. ``["mlflow", "aim"]``.
        tags: run tags.
        log_checkpoints: which checkpoints to upload: ``none``, ``last``, ``best`` or ``all``.
        journal_dir: where the run's journal is kept.
        delivery: ``process`` (default) or ``thread``.
        system_metrics: record CPU, memory, disk, network and GPU load.
        system_metrics_interval: seconds between two system metric points.
        on_tracker_error: ``warn`` (default) or ``raise``: see :class:`~tracelet_lightning.TraceletLogger`.
        log_learning_rate: record every optimizer param group's learning rate (``lr/<Optimizer>``)
            at Lightning's logging cadence.
        log_throughput: record each training epoch's wall time and batches and samples per second
            (``perf/*``).
        log_model_summary: record the parameter counts as params (``model_summary/*``) and the
            summary table as the artifact ``tracelet/model_summary.txt`` when ``fit`` starts.

    Raises:
        ConfigurationError: a setting is invalid (raised here, before training starts).
        TrackerConfigurationError: with ``on_tracker_error="raise"``, from ``fit`` (``on_fit_start``) when a
            tracker cannot open its run.

    Example::

        trainer = Trainer(callbacks=[TraceletCallback()], logger=False)
        trainer = Trainer(callbacks=[TraceletCallback(system_metrics_interval=5)], logger=CSVLogger("logs"))
    """

    def __init__(
        self,
        experiment: str | None = None,
        run_name: str | None = None,
        backends: list[str] | None = None,
        tags: dict[str, str] | None = None,
        log_checkpoints: Literal["none", "last", "best", "all"] | None = None,
        journal_dir: str | None = None,
        delivery: Literal["process", "thread"] | None = None,
        system_metrics: bool | None = None,
        system_metrics_interval: float | None = None,
        on_tracker_error: Literal["warn", "raise"] | None = None,
        log_learning_rate: bool = True,
        log_throughput: bool = True,
        log_model_summary: bool = True,
    ) -> None:
        options: dict[str, Any] = {
            "experiment": experiment,
            "run_name": run_name,
            "backends": backends,
            "tags": tags,
            "log_checkpoints": log_checkpoints,
            "journal_dir": journal_dir,
            "delivery": delivery,
            "system_metrics": system_metrics,
            "system_metrics_interval": system_metrics_interval,
            "on_tracker_error": on_tracker_error,
        }
        self._settings: TraceletSettings = load_settings(**options)
        self._given = sorted(name for name, value in options.items() if value is not None)
        self.log_learning_rate = log_learning_rate
        self.log_throughput = log_throughput
        self.log_model_summary = log_model_summary
        self._logger: TraceletLogger | None = None
        self._added: TraceletLogger | None = None
        self._restored: CheckpointRun | None = None  # the run of the checkpoint Lightning loaded
        self._native_ids: dict[str, str] = {}  # the logger's run's tracker ids, once all are known
        self._lr_step = -1
        self._epoch_start: float | None = None
        self._val_start: float | None = None
        self._val_time = 0.0
        self._batches = 0
        self._samples: int | None = 0

    @property
    @override
    def state_key(self) -> str:
        """A fixed key, so a checkpoint names its Tracelet run whatever subclass wrote it."""
        return CALLBACK_STATE_KEY

    @property
    def logger(self) -> TraceletLogger | None:
        """The ``TraceletLogger`` this callback works with (the Trainer's, or the one it added)."""
        return self._logger

    # -- attaching ------------------------------------------------------------------------------

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Find a ``TraceletLogger`` in the Trainer; outside ``fit``, add one now if there is none."""
        found = next((lg for lg in trainer.loggers if isinstance(lg, TraceletLogger)), None)
        self._logger, self._native_ids = found, {}
        if found is None:
            if stage != "fit":
                self._add_logger(trainer)
            return
        found.attach_trainer(trainer)
        if found is self._added or not trainer.is_global_zero:
            return
        ignored = [name for name in self._given if name not in _COLLECTOR_OPTIONS]
        if ignored:
            warn_once(
                "callback-options-ignored",
                f"TraceletCallback options {', '.join(ignored)} are ignored: the run belongs to the Trainer's "
                "TraceletLogger, whose own options apply (the callback's system metrics options do apply).",
            )
        wanted = {name: getattr(self._settings, name) for name in _COLLECTOR_OPTIONS if name in self._given}
        if any(getattr(found.settings, name) != value for name, value in wanted.items()):
            try:
                found.experiment.restart_collectors(**wanted)
            except Exception as exc:  # collectors are extras: never stop training for them
                warn_once("collectors-restart", f"Tracelet could not apply the system metrics options: {exc}")

    @override
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Open the run (continuing the checkpoint's run on resume) and record the model's size."""
        if self._logger is None:
            self._add_logger(trainer)
        if self._restored is not None and self._logger is not None and trainer.is_global_zero:
            warn_not_continued(self._logger, self._restored)
        self._restored = None
        if self._distributed(trainer):
            import psutil

            psutil.cpu_percent()  # the first reading only starts psutil's interval
        if not trainer.is_global_zero or self._logger is None:
            return
        run = self._logger.open_run()
        if self.log_model_summary:
            try:
                record_model_summary(run, pl_module)
            except Exception as exc:  # a summary is a nice-to-have: never stop training for it
                warn_once("model-summary", f"Tracelet could not record the model summary: {exc}")

    def _add_logger(self, trainer: Trainer) -> None:
        restored = self._restored
        if restored is None:
            logger = TraceletLogger.from_settings(self._settings)
        else:
            # When the journal is not here (another machine), the checkpoint's tracker run ids let each
            # tracker continue its own run instead of starting a second one.
            settings = restored.settings_for(self._settings)
            logger = TraceletLogger.from_settings(settings, restored.run_id, restored.backend_run_ids)
        logger.attach_trainer(trainer)
        trainer.loggers = [*trainer.loggers, logger]
        self._logger = self._added = logger
        self._native_ids = {}

    # -- checkpoint state -----------------------------------------------------------------------

    @override
    def state_dict(self) -> dict[str, Any]:
        """Tracelet's run id, experiment, journal directory and each backend's native run id."""
        logger = self._logger
        if logger is None or getattr(rank_zero_only, "rank", 0) != 0:
            return {}
        run = logger.run
        if run is not None and len(self._native_ids) < len(run.backends):
            self._native_ids = run.backend_run_ids
        return CheckpointRun(logger.version, logger.name, logger.save_dir, dict(self._native_ids)).state()

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Remember the checkpoint's run: ``fit`` continues it, in the run this callback opens or in the
        Trainer's ``TraceletLogger`` (whose run Lightning created before loading the checkpoint, but
        which records nothing until training starts)."""
        self._restored = CheckpointRun.from_state(state_dict)
        if self._restored is not None and self._logger is not None and self._logger is not self._added:
            continue_in(self._logger, self._restored)

    # -- learning rate and throughput -----------------------------------------------------------

    @override
    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        """Record the learning rates at Lightning's logging cadence (the step the batch's metrics get)."""
        if not self.log_learning_rate or not trainer.is_global_zero or self._logger is None:
            return
        step, every = trainer.global_step, int(getattr(trainer, "log_every_n_steps", 50))
        if step == self._lr_step or every <= 0 or (step and (step + 1) % every):
            return
        self._lr_step = step
        rates = learning_rates(trainer.optimizers)
        if rates:
            self._logger.experiment.log_metrics(rates, step=step)

    @override
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Count the batch and its samples for the epoch's throughput."""
        self._batches += 1
        if self._samples is not None:
            size = batch_size(batch)
            self._samples = None if size is None else self._samples + size

    @override
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start the epoch's clock."""
        self._epoch_start, self._val_time, self._batches, self._samples = time.perf_counter(), 0.0, 0, 0

    @override
    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Time validation inside ``fit`` (not the sanity check), to tell it apart from training."""
        if not trainer.sanity_checking and self._epoch_start is not None:
            self._val_start = time.perf_counter()

    @override
    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Stop the validation clock."""
        if self._val_start is not None:
            self._val_time += time.perf_counter() - self._val_start
            self._val_start = None

    @override
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Record the epoch's time and throughput, and in distributed runs each node's system load."""
        if self._distributed(trainer):
            self._record_node_metrics(trainer, pl_module)  # a collective: every rank takes part
        if not self.log_throughput or not trainer.is_global_zero or self._logger is None:
            return
        if self._epoch_start is None:
            return
        elapsed = time.perf_counter() - self._epoch_start
        train_time = max(elapsed - self._val_time, 1e-9)
        metrics = {"perf/epoch_time_s": elapsed, "perf/batches_per_s": self._batches / train_time}
        if self._val_time:
            metrics["perf/val_time_s"] = self._val_time
        if self._samples:
            # Each rank sees its own shard of the data; the Trainer's throughput is all of them.
            metrics["perf/samples_per_s"] = self._samples * trainer.world_size / train_time
        # Lightning logs epoch-end metrics at the step of the epoch's last batch: global_step - 1.
        self._logger.experiment.log_metrics(metrics, step=max(trainer.global_step - 1, 0))
        self._epoch_start = None

    # -- outcome --------------------------------------------------------------------------------

    @override
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Record how each EarlyStopping callback ended (as ``early_stopping.*`` tags)."""
        if not trainer.is_global_zero or self._logger is None:
            return
        tags: dict[str, str] = {}
        callbacks = trainer.early_stopping_callbacks
        for callback in callbacks:
            prefix = "early_stopping" if len(callbacks) == 1 else f"early_stopping.{callback.monitor}"
            reason = getattr(callback, "stopping_reason", None)
            reason_name = str(getattr(reason, "name", "") or "").lower()
            stopped = callback.stopped_epoch > 0 or reason_name not in ("", "not_stopped")
            tags.update(
                {
                    f"{prefix}.monitor": str(callback.monitor),
                    f"{prefix}.stopped": str(stopped).lower(),
                    f"{prefix}.stopped_epoch": str(callback.stopped_epoch) if stopped else "",
                    f"{prefix}.best_score": repr(float(callback.best_score)),
                    f"{prefix}.wait_count": str(callback.wait_count),
                }
            )
            if reason_name:
                tags[f"{prefix}.reason"] = reason_name
            message = getattr(callback, "stopping_reason_message", None)
            if message:
                tags[f"{prefix}.message"] = str(message)
        if tags:
            self._logger.experiment.set_tags({k: v for k, v in tags.items() if v != ""})

    # -- distributed ----------------------------------------------------------------------------

    def _distributed(self, trainer: Trainer) -> bool:
        """Whether to gather per-node system load (the same answer on every rank)."""
        settings = self._logger.settings if self._logger is not None else self._settings
        wanted = self._settings.system_metrics if "system_metrics" in self._given else settings.system_metrics
        return trainer.world_size > 1 and settings.enabled and wanted

    def _record_node_metrics(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Gather each node's system load to rank zero, which records it as ``system/node<N>/*``."""
        import psutil
        import torch

        memory = psutil.virtual_memory()
        local = [
            float(trainer.node_rank),
            1.0 if trainer.local_rank == 0 else 0.0,
            psutil.cpu_percent(),
            memory.percent,
            memory.used / 2**20,
            psutil.Process().memory_info().rss / 2**20,
        ]
        gathered = trainer.strategy.all_gather(torch.tensor(local, dtype=torch.float64, device=pl_module.device))
        if not trainer.is_global_zero or self._logger is None:
            return
        metrics: dict[str, float] = {}
        for node, first, cpu, mem_percent, mem_used, rss in gathered.reshape(-1, _NODE_FIELDS).cpu().tolist():
            prefix = f"system/node{int(node)}"
            if first:
                metrics[f"{prefix}/cpu_percent"] = cpu
                metrics[f"{prefix}/memory_percent"] = mem_percent
                metrics[f"{prefix}/memory_used_mb"] = mem_used
            metrics[f"{prefix}/process_rss_mb"] = metrics.get(f"{prefix}/process_rss_mb", 0.0) + rss
        self._logger.experiment.log_metrics(metrics)
