"""Render the docs' tracker figures from one real training, read back from each tracker's own store.

Trains the quickstart's small regressor with ``TraceletLogger(backends=[all four])`` in a scratch
directory (MLflow SQLite, W&B offline, ClearML offline, Aim local), reads ``train/loss`` and
``val/loss`` back from every store (MLflow with ``MlflowClient``; the others through the readers
behind ``tracelet migrate``, which parse W&B's run file, ClearML's offline session and Aim's
repository), and writes small palette PNGs to ``docs/images/``: ``parity.png`` (all four side by
side), and ``wandb.png`` and ``clearml.png``, whose servers cannot run here. MLflow and Aim run
their own UIs locally, so ``docs/_scripts/screenshots.py`` takes real screenshots of those instead::

    python docs/_scripts/render_plots.py          # about a minute; needs the dev install

The PNGs are committed (under 200 KB together); rerun this after a change to what the backends
record.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1]
IMAGES = DOCS / "images"
DPI = 80

TRAIN = textwrap.dedent(
    """
    import sys
    import time

    import lightning.pytorch as pl
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from tracelet_lightning import TraceletLogger


    class Regressor(pl.LightningModule):
        def __init__(self, hidden: int = 16, lr: float = 0.02):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 1))

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.mse_loss(self.net(x), y)
            self.log("train/loss", loss)
            time.sleep(0.05)  # a few seconds of training, so that system metrics have several points
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val/loss", nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


    def loader(seed, shuffle=False):
        x = torch.randn(512, 8, generator=torch.Generator().manual_seed(seed))
        return DataLoader(TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=32, shuffle=shuffle)


    pl.seed_everything(0)
    logger = TraceletLogger(experiment="docs", backends=sys.argv[1].split(","),
                            system_metrics_interval=1, log_checkpoints="none")
    trainer = pl.Trainer(max_epochs=8, logger=logger, log_every_n_steps=2, enable_progress_bar=False,
                         enable_checkpointing=False)
    trainer.fit(Regressor(), loader(0, shuffle=True), loader(1))
    for backend in logger.report.backends:
        print("NATIVE", backend.name, backend.native_id, backend.location)
    """
)


ALL_TRACKERS = ("mlflow", "wandb", "clearml", "aim")


def train(workdir: Path, backends: tuple[str, ...] = ALL_TRACKERS) -> dict[str, tuple[str, str]]:
    """Run the training in ``workdir``, tracked to ``backends``; returns each backend's (native id, location)."""
    home = workdir / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACELET_", "MLFLOW_", "WANDB_", "CLEARML_"))}
    env.update(
        HOME=str(home),
        MLFLOW_DISABLE_TELEMETRY="true",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        CLEARML_OFFLINE_MODE="1",
        CLEARML_CACHE_DIR=str(workdir / "clearml"),
    )
    (workdir / "train.py").write_text(TRAIN)
    proc = subprocess.run(
        [sys.executable, "train.py", ",".join(backends)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise SystemExit(f"training failed:\n{proc.stdout}\n{proc.stderr}")
    found = {}
    for line in proc.stdout.splitlines():
        if line.startswith("NATIVE "):
            _, name, native_id, location = line.split(" ", 3)
            found[name] = (native_id, location)
    return found


def read_back(workdir: Path, native: dict[str, tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Each store's points of train/loss and val/loss: {tracker: {key: [(step, value, time)]}}."""
    from mlflow import MlflowClient

    from tracelet_core.trackers.store import open_reader

    keys = ("train/loss", "val/loss")
    stores: dict[str, dict[str, Any]] = {}
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    mlflow_id = native["mlflow"][0]
    stores["mlflow"] = {
        key: [(m.step, m.value, m.timestamp / 1000) for m in client.get_metric_history(mlflow_id, key)] for key in keys
    }
    specs = {
        "wandb": f"wandb-offline:{workdir / 'wandb'}",
        "clearml": f"clearml-offline:{workdir / 'clearml'}",
        "aim": f"aim:{workdir}",
    }
    for name, spec in specs.items():
        with open_reader(spec) as reader:
            run = next(r for r in reader.list_runs() if r.native_id == native[name][0])
            record = reader.read_run(run, workdir / "scratch", artifacts=False)
        stores[name] = {key: [(p.step, p.value, p.timestamp) for p in record.metrics if p.key == key] for key in keys}
    return stores


TITLES = {
    "mlflow": ("MLflow", "metrics train/loss, val/loss", "step"),
    "wandb": ("Weights & Biases", "train/loss, val/loss", "trainer/global_step"),
    "clearml": ("ClearML", 'title "train"/"val", series "loss"', "iteration"),
    "aim": ("Aim", 'sequence "loss", subset train / val', "step"),
}


def _save(figure: Any, path: Path) -> int:
    """Save as an 8-bit palette PNG (a tenth of the size of matplotlib's RGBA)."""
    from PIL import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=64).save(path, optimize=True)
    return path.stat().st_size


def _loss_axes(axes: Any, store: dict[str, Any], tracker: str) -> None:
    title, subtitle, xlabel = TITLES[tracker]
    for key, style in (("train/loss", "-"), ("val/loss", "o-")):
        points = store[key]
        axes.plot([p[0] for p in points], [p[1] for p in points], style, markersize=3, linewidth=1.2, label=key)
    axes.set_yscale("log")
    axes.set_title(f"{title}\n{subtitle}", fontsize=9)
    axes.set_xlabel(xlabel, fontsize=8)
    axes.tick_params(labelsize=7)
    axes.legend(fontsize=7)
    axes.grid(alpha=0.3)


def render(stores: dict[str, dict[str, Any]]) -> dict[str, int]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMAGES.mkdir(exist_ok=True)
    sizes = {}
    figure, grid = plt.subplots(1, 4, figsize=(11, 3), sharey=True)
    for axes, tracker in zip(grid, TITLES, strict=True):
        _loss_axes(axes, stores[tracker], tracker)
    figure.tight_layout()
    sizes["parity.png"] = _save(figure, IMAGES / "parity.png")
    plt.close(figure)
    for tracker in ("wandb", "clearml"):
        figure, axes = plt.subplots(figsize=(5, 3))
        _loss_axes(axes, stores[tracker], tracker)
        figure.tight_layout()
        sizes[f"{tracker}.png"] = _save(figure, IMAGES / f"{tracker}.png")
        plt.close(figure)
    return sizes


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="tracelet-plots-") as scratch:
        workdir = Path(scratch)
        native = train(workdir)
        stores = read_back(workdir, native)
    for tracker, store in stores.items():
        counts = {key: len(points) for key, points in store.items()}
        print(f"{tracker}: {counts}")
    sizes = render(stores)
    for name, size in sizes.items():
        print(f"docs/images/{name}: {size / 1024:.1f} KiB")
    print(f"total {sum(sizes.values()) / 1024:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
