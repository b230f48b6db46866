"""What ``TraceletCallback`` reads off a Lightning model and its optimizers: learning rates, batch sizes
and the model summary. Pure functions of Lightning's public objects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule
    from torch.optim import Optimizer

    from tracelet_core.run import Run

__all__ = ["batch_size", "learning_rates", "record_model_summary"]


def learning_rates(optimizers: Sequence[Optimizer]) -> dict[str, Any]:
    """``lr/<Optimizer>`` (``lr/<Optimizer>/<group name or pg<i>>`` with several param groups) to value.

    Example:
        >>> import torch
        >>> layer = torch.nn.Linear(2, 2)
        >>> groups = [{"params": [layer.weight], "name": "body"}, {"params": [layer.bias], "lr": 0.01}]
        >>> learning_rates([torch.optim.SGD(groups, lr=0.1)])
        {'lr/SGD/body': 0.1, 'lr/SGD/pg1': 0.01}
    """
    rates: dict[str, Any] = {}
    seen: dict[str, int] = {}
    for optimizer in optimizers:
        name = type(optimizer).__name__
        count = seen[name] = seen.get(name, 0) + 1
        if count > 1:
            name = f"{name}-{count - 1}"
        groups = optimizer.param_groups
        for index, group in enumerate(groups):
            if "lr" in group:
                key = f"lr/{name}" if len(groups) == 1 else f"lr/{name}/{group.get('name') or f'pg{index}'}"
                rates[key] = group["lr"]
    return rates


def batch_size(batch: Any, depth: int = 0) -> int | None:
    """The leading dimension of the first tensor in a batch (tensor, sequence or mapping), or None.

    Example:
        >>> import torch
        >>> batch_size({"image": torch.zeros(16, 3, 8, 8), "label": torch.zeros(16)}), batch_size("text")
        (16, None)
    """
    shape = getattr(batch, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else None
    if depth < 3:
        if isinstance(batch, Mapping) and batch:
            return batch_size(next(iter(batch.values())), depth + 1)
        if isinstance(batch, list | tuple) and batch:
            return batch_size(batch[0], depth + 1)
    return None


def record_model_summary(run: Run, pl_module: LightningModule) -> None:
    """Parameter counts as params and Lightning's summary table as ``tracelet/model_summary.txt``."""
    from lightning.pytorch.utilities.model_summary import ModelSummary

    summary = ModelSummary(pl_module, max_depth=1)
    run.log_params(
        {
            "model_summary": {
                "class": type(pl_module).__qualname__,
                "total_params": summary.total_parameters,
                "trainable_params": summary.trainable_parameters,
            }
        },
        config=False,  # facts about the model, not configuration
    )
    path = Path(run.run_dir) / "files" / "model_summary.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(summary) + "\n", encoding="utf-8")
    run.log_artifact(path, name="tracelet/model_summary.txt")
