"""Weights & Biases: runs are sent online or to offline run files (read back from those files)."""

from __future__ import annotations

from tracelet_core.trackers.descriptor import Tracker
from tracelet_core.trackers.wandb.options import WandbOptions

TRACKER = Tracker(
    name="wandb",
    backend="tracelet_core.trackers.wandb.backend:WandbBackend",
    reader="tracelet_core.trackers.wandb.reader:WandbOfflineReader",
    kinds=("wandb-offline", "wandb"),
    options=WandbOptions,
    doctor="tracelet_core.trackers.wandb.doctor:check",
    destination="tracelet_core.trackers.wandb.reader:destination",
    sdk="wandb",
    min_version="0.18",
    extra="wandb",
    sdk_variables={
        "project": "WANDB_PROJECT",
        "entity": "WANDB_ENTITY",
        "group": "WANDB_RUN_GROUP",
        "job_type": "WANDB_JOB_TYPE",
        "mode": "WANDB_MODE",
        "dir": "WANDB_DIR",
    },
    description="Weights & Biases (online, or offline run files for `wandb sync`)",
)
