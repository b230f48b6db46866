"""Tracelet's own server (``tracelet server``): runs are sent to it over HTTP and read back from its REST API."""

from __future__ import annotations

from tracelet_core.trackers.descriptor import Tracker
from tracelet_core.trackers.tracelet.options import TraceletServerOptions

TRACKER = Tracker(
    name="tracelet",
    backend="tracelet_core.trackers.tracelet.backend:TraceletServerBackend",
    reader="tracelet_core.trackers.tracelet.reader:TraceletServerReader",
    options=TraceletServerOptions,
    doctor="tracelet_core.trackers.tracelet.doctor:check",
    destination="tracelet_core.trackers.tracelet.reader:destination",
    sdk="httpx",
    min_version="0.27",
    extra="server",
    description="Tracelet's own server (tracelet server): live charts, REST API",
)
