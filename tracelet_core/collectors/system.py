"""System load from psutil: CPU, memory, disk and network, as ``system/*`` metrics.

Sampling and reporting are separate: memory and RSS are read every ``sample_interval`` seconds
(``min(interval, 1 s)`` by default) and reported as the mean of those readings every ``interval``
seconds (``TRACELET_SYSTEM_METRICS_INTERVAL``), so a report stands for its whole interval without
sending a point per reading. CPU percentages come from CPU-time counters read at each report, which
makes them exact means over the interval. Disk and network counters are reported as totals since
the run started (the latest value, not a mean). Disk usage is that of the working directory's disk
at the report. Sizes are MiB (2**20 bytes). Each report's step is its index (0, 1, 2... over the
run, continued by a resumed run), with the wall-clock time of the report as its timestamp.

The process metrics are the training process alone: DataLoader workers and Tracelet's delivery
process are processes of their own. ``system/process_cpu_percent`` is in percent of one core, as
``top`` shows it, so it exceeds 100 for a process that keeps several cores busy.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil

from tracelet_core.collectors.base import Collected, Collector, CollectorContext, MeanWindow

__all__ = ["SystemCollector"]

logger = logging.getLogger("tracelet.collectors")

MIB = float(1 << 20)
_T = TypeVar("_T")


def _cpu_busy_and_total(times: Any) -> tuple[float, float]:
    """Busy and total CPU seconds, counted the way ``psutil.cpu_percent`` (and htop) counts them."""
    total = sum(times)
    # Linux counts guest time inside user/nice time already, and iowait is time the CPU idled.
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    busy = total - times.idle - getattr(times, "iowait", 0.0)
    return busy, total


class SystemCollector(Collector):
    """CPU, memory, disk and network load of the machine and of the training process.

    Args:
        interval: seconds between two reports.
        sample_interval: seconds between two memory readings; ``min(interval, 1)`` when None.
        prefix: put before every metric name; a hook for per-node names in multi-node runs.
        disk_path: the path whose disk usage is reported; the working directory at start when None.

    Example:
        >>> import tempfile
        >>> collector = SystemCollector(interval=1.0)
        >>> collector.start(CollectorContext(Path(tempfile.mkdtemp())))
        >>> collector.sample()
        >>> report = collector.collect()
        >>> report.metrics["system/memory_percent"] > 0, report.metrics["system/net_sent_mb"] >= 0
        (True, True)
    """

    name = "system"

    def __init__(
        self,
        interval: float = 10.0,
        sample_interval: float | None = None,
        prefix: str = "system/",
        disk_path: str | Path | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.interval = interval
        self.sample_interval = min(interval, 1.0) if sample_interval is None else sample_interval
        self.prefix = prefix
        self._disk_path = disk_path
        self._window = MeanWindow()
        self._next_step = 0
        self._failed: set[str] = set()

    def start(self, context: CollectorContext) -> None:
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first call only primes the counter
        # Our own CPU-time counter instead of psutil.cpu_percent(), whose state is module-global and
        # would be reset by anything else in the process that calls it.
        self._cpu_times = psutil.cpu_times()
        self._disk_path_now = str(self._disk_path or Path.cwd())
        self._disk_start = self._read("disk_io", psutil.disk_io_counters)
        self._net_start = self._read("net_io", psutil.net_io_counters)
        self._window = MeanWindow()
        self._reported = False
        self._next_step = context.first_sample

    def sample(self) -> None:
        memory = psutil.virtual_memory()
        self._window.add(
            {
                "memory_percent": memory.percent,
                "memory_used_mb": memory.used / MIB,
                "process_rss_mb": self._process.memory_info().rss / MIB,
            }
        )

    def collect(self) -> Collected | None:
        if not len(self._window):
            if self._reported:
                return None  # nothing was sampled since the last report (the run stopped right after one)
            self.sample()  # a run shorter than one sampling period still gets its point
        self._reported = True
        metrics = self._window.take()
        cpu_times = psutil.cpu_times()
        busy_before, total_before = _cpu_busy_and_total(self._cpu_times)
        busy_now, total_now = _cpu_busy_and_total(cpu_times)
        if total_now > total_before:
            share = (busy_now - busy_before) / (total_now - total_before)
            metrics["cpu_percent"] = min(100.0, max(0.0, 100.0 * share))
        self._cpu_times = cpu_times
        metrics["process_cpu_percent"] = self._process.cpu_percent(None)
        usage = self._read("disk_usage", lambda: psutil.disk_usage(self._disk_path_now))
        if usage is not None:
            metrics["disk_usage_percent"] = usage.percent
        disk = self._read("disk_io", psutil.disk_io_counters)
        if disk is not None and self._disk_start is not None:
            metrics["disk_read_mb"] = max(0, disk.read_bytes - self._disk_start.read_bytes) / MIB
            metrics["disk_write_mb"] = max(0, disk.write_bytes - self._disk_start.write_bytes) / MIB
        net = self._read("net_io", psutil.net_io_counters)
        if net is not None and self._net_start is not None:
            metrics["net_sent_mb"] = max(0, net.bytes_sent - self._net_start.bytes_sent) / MIB
            metrics["net_recv_mb"] = max(0, net.bytes_recv - self._net_start.bytes_recv) / MIB
        self._next_step += 1
        return Collected(
            {self.prefix + k: v for k, v in metrics.items()}, timestamp=time.time(), step=self._next_step - 1
        )

    def _read(self, what: str, read: Callable[[], _T | None]) -> _T | None:
        """One psutil reading that some machines cannot give (containers without disks, no NICs)."""
        try:
            return read()
        except (OSError, RuntimeError, psutil.Error) as exc:
            if what not in self._failed:
                self._failed.add(what)
                logger.debug("Tracelet cannot read %s on this machine (pid %d): %s", what, os.getpid(), exc)
            return None
