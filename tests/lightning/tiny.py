"""A tiny LightningModule and data for the logger tests (fast on CPU, no downloads)."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import Logger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Mode(enum.Enum):
    FAST = "fast"


@dataclasses.dataclass
class Schedule:
    warmup: int = 10
    gamma: float = 0.5


class TinyModel(pl.LightningModule):
    def __init__(self, lr: float = 0.05, fail_at: int | None = None, **extra: Any) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = nn.Linear(8, 2)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.hparams.fail_at is not None and self.global_step == self.hparams.fail_at:
            raise RuntimeError("boom")
        x, y = batch
        loss = nn.functional.cross_entropy(self.layer(x), y)
        self.log("train/loss", loss)
        self.log("train/lr_x2", self.hparams.lr * 2)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val/loss", nn.functional.cross_entropy(self.layer(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loader() -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=generator)
    return DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8)


def make_trainer(logger: Logger, epochs: int = 2) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=epochs,
        logger=logger,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
