"""CPU cost of the system metrics collectors, as a share of one core.

Runs the system and GPU collectors as a run does (one ``tracelet-collectors`` thread; the GPU
collector steps aside where there is no NVML), reporting every ``--interval`` seconds for
``--seconds`` seconds, while the main thread sleeps. The figure is the CPU time (user + system)
of the collector thread, read from its POSIX CPU-time clock, divided by the wall time.
Target: under 0.5 % of one core at a 1 s interval.

    python benchmarks/collector_overhead.py --seconds 60
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from tracelet_core.collectors import CollectorSet
from tracelet_core.collectors.gpu import GpuCollector
from tracelet_core.collectors.system import SystemCollector

TARGET_PERCENT = 0.5


class CountingSink:
    """Takes what the collectors send and only counts it (the run's real sink is an O(1) enqueue)."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = Path(run_dir)
        self.reports = 0
        self.values = 0

    def log_metrics(self, metrics: dict[str, float], step: int | None = None, timestamp: float | None = None) -> None:
        self.reports += 1
        self.values += len(metrics)

    def set_tags(self, tags: dict[str, str]) -> None:
        pass

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log_artifact(self, path: str, name: str | None = None) -> None:
        pass


def thread_cpu_clock(thread: threading.Thread) -> Callable[[], float]:
    """CPU seconds of ``thread``, read from another thread: its POSIX CPU clock (ns resolution) where
    there is one, else the kernel's per-thread counters through psutil (10 ms resolution)."""
    assert thread.ident is not None and thread.native_id is not None
    if hasattr(time, "pthread_getcpuclockid"):
        clock = time.pthread_getcpuclockid(thread.ident)
        return lambda: time.clock_gettime(clock)
    native_id = thread.native_id

    def from_psutil() -> float:
        for info in psutil.Process().threads():
            if info.id == native_id:
                return info.user_time + info.system_time
        raise LookupError(f"thread {native_id} is gone")

    return from_psutil


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description="CPU cost of Tracelet's system metrics collectors")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to measure (default 60)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between two reports (default 1)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as run_dir:
        sink = CountingSink(run_dir)
        collectors = CollectorSet(sink, [SystemCollector(interval=args.interval), GpuCollector(interval=args.interval)])
        collectors.start()
        time.sleep(0.5)  # past start-up (NVML probing, psutil priming): measure the steady state
        (thread,) = [t for t in threading.enumerate() if t.name == "tracelet-collectors"]
        thread_cpu = thread_cpu_clock(thread)
        process = psutil.Process()
        cpu_before = thread_cpu()
        process_before = sum(process.cpu_times()[:2])
        wall_before = time.monotonic()
        time.sleep(args.seconds)
        cpu_used = thread_cpu() - cpu_before
        process_used = sum(process.cpu_times()[:2]) - process_before
        wall = time.monotonic() - wall_before
        collectors.stop()

    share = 100.0 * cpu_used / wall
    print(f"collector thread: {cpu_used * 1000:.0f} ms CPU in {wall:.1f} s = {share:.3f} % of one core")
    print(f"whole process (main thread asleep): {100.0 * process_used / wall:.3f} % of one core")
    print(f"{sink.reports} reports, {sink.values} values, interval {args.interval:g} s")
    print(f"target < {TARGET_PERCENT} %: {'met' if share < TARGET_PERCENT else 'MISSED'}")
    return share


if __name__ == "__main__":
    main()
