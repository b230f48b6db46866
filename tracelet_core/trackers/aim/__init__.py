"""Aim: runs are sent to and read from an Aim repository (local, or ``aim://`` for sending)."""

from __future__ import annotations

from tracelet_core.trackers.aim.options import AimOptions
from tracelet_core.trackers.descriptor import Tracker

TRACKER = Tracker(
    name="aim",
    backend="tracelet_core.trackers.aim.backend:AimBackend",
    reader="tracelet_core.trackers.aim.reader:AimReader",
    options=AimOptions,
    doctor="tracelet_core.trackers.aim.doctor:check",
    destination="tracelet_core.trackers.aim.reader:destination",
    sdk="aim",
    min_version="3.20",
    extra="aim",
    description="Aim (a local repository, or a remote one through aim://)",
)
