"""TensorBoard event files, as a store runs are read from (``tracelet import-tensorboard``, ``migrate``)."""

from __future__ import annotations

from tracelet_core.trackers.descriptor import Tracker

TRACKER = Tracker(
    name="tensorboard",
    reader="tracelet_core.trackers.tensorboard.reader:TensorBoardReader",
    sdk="tensorboard",
    min_version="2.15",
    extra="tensorboard",
    description="TensorBoard event files (every directory holding them is a run)",
)
