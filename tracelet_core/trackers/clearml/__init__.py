"""ClearML: runs are sent to a ClearML server or an offline session (read back from offline sessions)."""

from __future__ import annotations

from tracelet_core.trackers.clearml.options import ClearMLOptions
from tracelet_core.trackers.descriptor import Tracker

TRACKER = Tracker(
    name="clearml",
    backend="tracelet_core.trackers.clearml.backend:ClearMLBackend",
    reader="tracelet_core.trackers.clearml.reader:ClearMLOfflineReader",
    kinds=("clearml-offline", "clearml"),
    options=ClearMLOptions,
    doctor="tracelet_core.trackers.clearml.doctor:check",
    destination="tracelet_core.trackers.clearml.reader:destination",
    sdk="clearml",
    min_version="1.16",
    extra="clearml",
    sdk_variables={"offline": "CLEARML_OFFLINE_MODE"},
    description="ClearML (a server, or offline sessions)",
)
