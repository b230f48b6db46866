"""A tiny LightningModule and DataModule for the Lightning tests, and readers for what reached MLflow.

Random tensors, 8 features, 64 training samples in batches of 8: one epoch is 8 optimizer steps and
takes milliseconds on a CPU. Everything a test varies is a constructor argument, so the same classes
also run under LightningCLI and in the subprocess scripts (DDP, resume).
"""

from __future__ import annotations

import time
from typing import Any

import lightning.pytorch as pl
import torch
from mlflow.entities import Run as MlflowRun
from mlflow.tracking import MlflowClient
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

STEPS_PER_EPOCH = 8


class TinyData(pl.LightningDataModule):
    """Random features with a learnable label; ``samples / batch_size`` training batches per epoch."""

    def __init__(self, batch_size: int = 8, samples: int = 64, features: int = 8, seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        generator = torch.Generator().manual_seed(self.hparams.seed)
        x = torch.randn(self.hparams.samples + 32, self.hparams.features, generator=generator)
        y = (x.sum(dim=1) > 0).long()
        self.train_set = TensorDataset(x[: self.hparams.samples], y[: self.hparams.samples])
        self.val_set = TensorDataset(x[self.hparams.samples :], y[self.hparams.samples :])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=16)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=16)


class TinyModel(pl.LightningModule):
    """A two-layer perceptron that logs ``train/loss`` (step and epoch) and ``val/loss``, ``val/acc`` (epoch).

    Args:
        features: input width (must match the data).
        hidden: hidden width.
        lr: SGD learning rate.
        optimizer: nested settings, to see nested hyperparameters flattened.
        fail_at_step: raise RuntimeError in the training step at this global step.
        param_groups: split the parameters into two SGD param groups with different learning rates.
        log_media: log an image, a histogram, a text and a figure through ``self.logger`` each epoch.
        epoch_metric_only: log ``train/loss`` on the epoch only.
        val_scores: ``val/score`` to log at each epoch's validation (a monitored value a test controls).
    """

    def __init__(
        self,
        features: int = 8,
        hidden: int = 16,
        lr: float = 0.1,
        optimizer: dict[str, Any] | None = None,
        fail_at_step: int | None = None,
        param_groups: bool = False,
        log_media: bool = False,
        epoch_metric_only: bool = False,
        val_scores: list[float] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.hparams.fail_at_step is not None and self.global_step >= self.hparams.fail_at_step:
            raise RuntimeError(f"boom at step {self.global_step}")
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        on_step = not self.hparams.epoch_metric_only
        self.log("train/loss", loss, on_step=on_step, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val/loss", nn.functional.cross_entropy(logits, y), on_epoch=True)
        self.log("val/acc", (logits.argmax(dim=1) == y).float().mean(), on_epoch=True)
        scores = self.hparams.val_scores
        if scores:
            self.log("val/score", float(scores[min(self.current_epoch, len(scores) - 1)]), on_epoch=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("test/loss", nn.functional.cross_entropy(self(x), y))

    def on_train_epoch_end(self) -> None:
        from tracelet_lightning import TraceletLogger

        logger = self.logger
        if not self.hparams.log_media or not isinstance(logger, TraceletLogger):
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        step = self.global_step
        weights = self.net[0].weight.detach()
        logger.log_image("weights/image", weights.abs() / weights.abs().max(), step=step)
        logger.log_histogram("weights/hist", weights, step=step)
        logger.log_text("notes", f"epoch {self.current_epoch} ended at step {step}", step=step)
        figure, axes = plt.subplots(figsize=(2, 2))
        axes.plot([0, 1], [0, step])
        logger.log_figure("curve", figure, step=step)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.hparams.param_groups:
            first, second = self.net[0], self.net[2]
            groups = [
                {"params": first.parameters(), "name": "body"},
                {"params": second.parameters(), "lr": self.hparams.lr / 10, "name": "head"},
            ]
            return torch.optim.SGD(groups, lr=self.hparams.lr)
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class Spy(pl.loggers.Logger):
    """A logger that keeps what Lightning hands its loggers, to compare with what reached a tracker."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int | None, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "spy"

    @property
    def version(self) -> str:
        return "0"

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.calls.append((step, dict(metrics)))

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def points(self, key: str) -> list[tuple[int, float]]:
        """``[(step, value), ...]`` of one key, in step order."""
        return sorted((int(step or 0), float(m[key])) for step, m in self.calls if key in m)


class Pause(pl.Callback):
    """Makes every training epoch last at least ``seconds``, for tests that need wall time to pass (collectors)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        time.sleep(self.seconds)


def trainer_kwargs(**overrides: Any) -> dict[str, Any]:
    """A fast CPU Trainer: 2 epochs of 8 steps, logging every 2 steps, no progress bar."""
    kwargs: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 2,
        "log_every_n_steps": 2,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    kwargs.update(overrides)
    return kwargs


def mlflow_runs(uri: str, experiment: str = "tracelet") -> list[MlflowRun]:
    """Every MLflow run of ``experiment`` (oldest first)."""
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = client.search_runs([found.experiment_id], order_by=["attributes.start_time ASC"])
    return list(runs)


def only_run(uri: str, experiment: str = "tracelet") -> MlflowRun:
    """The one MLflow run of ``experiment``; fails if there are none or several."""
    runs = mlflow_runs(uri, experiment)
    assert len(runs) == 1, f"expected one run in {experiment!r}, found {len(runs)}"
    return runs[0]


def history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    """``[(step, value), ...]`` of one metric as MLflow stores it, in step order."""
    points = MlflowClient(tracking_uri=uri).get_metric_history(run_id, key)
    return sorted((p.step, p.value) for p in points)


def artifact_paths(uri: str, run_id: str, path: str | None = None) -> list[str]:
    """Every artifact file of a run, recursively."""
    client = MlflowClient(tracking_uri=uri)
    found: list[str] = []
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            found.extend(artifact_paths(uri, run_id, info.path))
        else:
            found.append(info.path)
    return sorted(found)
