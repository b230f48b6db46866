"""``TraceletLogger``: Lightning's Logger interface on top of a Tracelet run.

It only translates Lightning's public hooks into :class:`tracelet_core.Run` calls; the run does
the rest (journal, delivery to the trackers, collectors). Every write is an enqueue, so
``self.log`` costs the training loop microseconds, whatever the trackers.
"""

from __future__ import annotations

import uuid
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from lightning.fabric.utilities.logger import _add_prefix
from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only
from typing_extensions import override

import tracelet_core
from tracelet_core.pipeline.report import DeliveryReport
from tracelet_core.run import Run, run_directory
from tracelet_core.settings import TraceletSettings, load_settings

__all__ = ["TraceletLogger"]

_STATUS = {"success": "FINISHED", "failed": "FAILED", "finished": "KILLED"}


class TraceletLogger(Logger):
    """Track a Lightning run in MLflow, W&B, ClearML and Aim (one or several) with one line.

    Arguments left as ``None`` come from ``TRACELET_*`` environment variables, a ``.env`` file or
    Tracelet's defaults (MLflow when it is installed, else the local journal alone).

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

    Raises:
        ConfigurationError: a setting is invalid (raised here, before training starts).

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
    ) -> None:
        super().__init__()
        self._settings: TraceletSettings = load_settings(
            experiment=experiment,
            run_name=run_name,
            backends=backends,
            tags=tags,
            log_checkpoints=log_checkpoints,
            journal_dir=journal_dir,
            delivery=delivery,
            system_metrics=system_metrics,
            system_metrics_interval=system_metrics_interval,
        )
        self._run_id = run_id or uuid.uuid4().hex
        self._prefix = prefix
        self._run: Run | None = None
        self._last_epoch: Any = None
        self._report: DeliveryReport | None = None

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
            self._run = tracelet_core.start_logging(settings=self._settings, run_id=self._run_id)
        return self._run

    # -- hooks ----------------------------------------------------------------------------------

    @override
    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace | Any, *args: Any, **kwargs: Any) -> None:
        """Record hyperparameters (dict, Namespace, dataclass, nested): flattened as params and whole as
        ``tracelet/config.yaml``."""
        if isinstance(params, Namespace):
            params = vars(params)
        self.experiment.log_params(params)

    @override
    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record metrics at Lightning's global step; ``epoch`` is recorded once per change."""
        run = self._run if self._run is not None else self.experiment
        if "epoch" in metrics:
            epoch = metrics["epoch"]
            if epoch == self._last_epoch:
                metrics = {k: v for k, v in metrics.items() if k != "epoch"}
            else:
                self._last_epoch = epoch
        if self._prefix:
            metrics = _add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR)
        run.log_metrics(metrics, step=step)

    @override
    def save(self) -> None:
        """Nothing to do: the run's writer thread flushes on its own schedule."""

    @override
    @rank_zero_only
    def finalize(self, status: str) -> None:
        """End the run: ``success`` → FINISHED, ``failed`` → FAILED, ``finished`` (requeue) → KILLED."""
        if self._run is None:
            return
        run, self._run = self._run, None
        self._report = run.finish(_STATUS.get(status, "FINISHED"))  # type: ignore[arg-type]

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

    # -- pickling for spawn ---------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_run"] = None  # live threads and handles stay in the process that made them
        return state
