"""Train a small classifier on scikit-learn's digits (bundled, no download), tracked by Tracelet.

    python examples/train_digits.py

The only Tracelet line is ``logger=TraceletLogger()``: with MLflow installed and nothing configured,
the run goes to MLflow's default store (``mlflow.db`` in the working directory). Set
``TRACELET_BACKENDS=mlflow,wandb,aim`` (or pass ``backends=[...]``) to send it elsewhere too.
Like every example here, it works in ``.tracelet-examples/`` (see ``_outputs.py``), so the store
is ``.tracelet-examples/mlflow.db``.
"""

from __future__ import annotations

import argparse

import lightning.pytorch as pl
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split

from tracelet_lightning import TraceletLogger

from _outputs import enter_output_dir


class DigitsData(pl.LightningDataModule):
    """The 8×8 digits of scikit-learn, split 80/10/10, pixel values scaled to [0, 1]."""

    def __init__(self, batch_size: int = 64, seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        digits = load_digits()
        x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
        y = torch.tensor(digits.target, dtype=torch.long)
        generator = torch.Generator().manual_seed(self.hparams.seed)
        self.train, self.val, self.test = random_split(TensorDataset(x, y), [0.8, 0.1, 0.1], generator=generator)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=256)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test, batch_size=256)


class DigitsClassifier(pl.LightningModule):
    """A two-layer perceptron."""

    def __init__(self, hidden: int = 64, lr: float = 1e-2, optimizer: dict | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        acc = (logits.argmax(dim=1) == y).float().mean()
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=not on_step, prog_bar=True)
        self.log(f"{stage}/acc", acc, on_step=on_step, on_epoch=not on_step)
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    enter_output_dir()  # everything this example writes goes under ./.tracelet-examples

    pl.seed_everything(0, verbose=False)
    logger = TraceletLogger()
    trainer = pl.Trainer(max_epochs=args.epochs, logger=logger, log_every_n_steps=5, enable_model_summary=False)
    model, data = DigitsClassifier(optimizer={"name": "adam", "betas": [0.9, 0.999]}), DigitsData()
    trainer.fit(model, datamodule=data)
    trainer.test(model, datamodule=data, verbose=False)

    report = logger.report
    print(f"\nTracelet run {logger.version}: {report.summary() if report else 'not started'}")
    print(f"  journal: {logger.log_dir}")
    for backend in report.backends if report else ():
        print(f"  {backend.name}: run {backend.native_id} at {backend.location}")
        if backend.name == "mlflow" and backend.location:
            print(f"  open it with: mlflow ui --backend-store-uri {backend.location}")


if __name__ == "__main__":
    main()
