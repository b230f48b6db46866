"""A plain PyTorch training loop that logs with TensorBoard's SummaryWriter, and reaches MLflow too.

    python examples/plain_pytorch_tensorboard.py
    cd .tracelet-examples              # where the examples write (see _outputs.py)
    tensorboard --logdir runs          # TensorBoard's files are written exactly as before
    mlflow ui                          # ... and the same values are in MLflow (mlflow.db in this directory)

The loop is what it would be without Tracelet; the only Tracelet lines are the two marked
``# Tracelet``. With nothing configured, the first value TensorBoard writes starts a Tracelet run
(named after the writer's log directory) that goes to MLflow's default store when MLflow is
installed; ``TRACELET_BACKENDS=mlflow,wandb`` (or ``TRACELET_EXPERIMENT=...``) changes where.
tensorboardX's SummaryWriter works the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split
from torch.utils.tensorboard import SummaryWriter

import tracelet_core  # Tracelet

from _outputs import OUTPUT_DIR, enter_output_dir

tracelet_core.patch_tensorboard()  # Tracelet: every SummaryWriter also logs to the active (or a new) run


def make_data(samples: int = 2000, seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """Points on two noisy concentric rings (no download), labelled by ring, split 80/20."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (samples,), generator=generator)
    angle = torch.rand(samples, generator=generator) * 2 * torch.pi
    radius = 0.5 + 0.5 * labels + 0.15 * torch.randn(samples, generator=generator)
    points = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    train, val = random_split(TensorDataset(points, labels), [0.8, 0.2], generator=generator)
    return train, val  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--logdir", help=f"TensorBoard's log directory (default: {OUTPUT_DIR}/runs/rings)")
    args = parser.parse_args(argv)
    logdir = Path(args.logdir or Path(OUTPUT_DIR, "runs", "rings")).resolve()
    enter_output_dir()  # everything this example writes goes under ./.tracelet-examples

    train, val = make_data()
    model = nn.Sequential(nn.Linear(2, args.hidden), nn.Tanh(), nn.Linear(args.hidden, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    writer = SummaryWriter(logdir)
    writer.add_text("config", f"hidden={args.hidden}, lr={args.lr}, epochs={args.epochs}")

    step = 0
    for epoch in range(args.epochs):
        model.train()
        for x, y in DataLoader(train, batch_size=64, shuffle=True):
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            writer.add_scalar("train/loss", loss.item(), step)
            step += 1
        model.eval()
        with torch.no_grad():
            x, y = val[:]
            logits = model(x)
            val_loss = loss_fn(logits, y).item()
            accuracy = (logits.argmax(1) == y).float().mean().item()
        writer.add_scalar("val/loss", val_loss, step)
        writer.add_scalar("val/accuracy", accuracy, step)
        writer.add_scalars("loss", {"train": loss.item(), "val": val_loss}, step)
        writer.add_histogram("weights/hidden", model[0].weight, step)
        writer.add_image("weights/hidden_map", model[0].weight.detach().abs().unsqueeze(0), step)
        writer.add_pr_curve("val/pr", y, logits.softmax(1)[:, 1], step)
        print(f"epoch {epoch}: val loss {val_loss:.3f}, accuracy {accuracy:.3f}")
    writer.add_hparams({"lr": args.lr, "hidden": args.hidden, "epochs": args.epochs}, {"hparam/accuracy": accuracy})
    writer.close()


if __name__ == "__main__":
    main()
