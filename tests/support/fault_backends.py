"""Backends that fail the way real trackers do, for the fault tests: importable by a delivery process.

Each keeps what it accepted in :class:`tracelet_core.testing.InMemoryBackend`'s store, so a test reads
back exactly what got through.
"""

from __future__ import annotations

import threading
import time
from typing import ClassVar

from tracelet_core.errors import PermanentDeliveryError, TrackerConfigurationError
from tracelet_core.events import Batch, MediaItem, RunInfo
from tracelet_core.testing import InMemoryBackend

POISON = "tests.support.fault_backends:PoisonBackend"
MISCONFIGURED = "tests.support.fault_backends:MisconfiguredBackend"
SLOW = "tests.support.fault_backends:SlowBackend"
FLAKY_OPEN = "tests.support.fault_backends:FlakyOpenBackend"


class PoisonBackend(InMemoryBackend):
    """Refuses, for good, any batch holding a metric whose key starts with ``poison``: a tracker's validation."""

    name = "poison"
    calls: ClassVar[int] = 0

    def write(self, batch: Batch) -> None:
        type(self).calls += 1
        bad = [p.key for p in batch.metrics if p.key.startswith("poison")]
        if bad:
            raise PermanentDeliveryError(f"invalid metric key {bad[0]!r}")
        super().write(batch)


class MisconfiguredBackend(InMemoryBackend):
    """A tracker without its API key: opening the run fails with a configuration error."""

    name = "misconfigured"
    opens: ClassVar[int] = 0

    def open(self, run: RunInfo, native_id: str | None) -> str:
        type(self).opens += 1
        raise TrackerConfigurationError("no API key configured (set MISCONFIGURED_API_KEY)")


class SlowBackend(InMemoryBackend):
    """A healthy but slow tracker: every media item takes ``delay`` seconds."""

    name = "slow"
    delay: ClassVar[float] = 0.2

    def log_media(self, item: MediaItem) -> None:
        time.sleep(self.delay)
        super().log_media(item)


class FlakyOpenBackend(InMemoryBackend):
    """Opens the native run, then fails once as if the answer were lost; counts the native runs it creates."""

    name = "flaky-open"
    created: ClassVar[list[str]] = []
    _failed: ClassVar[threading.Event] = threading.Event()

    def open(self, run: RunInfo, native_id: str | None) -> str:
        native = native_id or f"flaky-{len(self.created)}"
        if native_id is None:
            self.created.append(native)
        super().open(run, native)
        if not self._failed.is_set():
            self._failed.set()
            raise ConnectionError("the answer to the open call was lost")
        return native
