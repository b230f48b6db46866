"""A custom collector: how many files and threads the training process has open, every second.

A collector subclasses ``Collector``, sets ``interval`` (seconds between two reports; leave it
None to run once at the start) and returns metrics from ``collect()``; it runs on Tracelet's
collector thread, never on the training thread. ``register_collector`` makes every run started
afterwards in this process use it. To ship it in a package instead, declare it as an entry point::

    [project.entry-points."tracelet.collectors"]
    open_files = "my_package.collectors:OpenFilesCollector"

Run it::

    python examples/custom_collector.py --seconds 5            # the default trackers (MLflow if installed)
    python examples/custom_collector.py --backend mlflow --backend aim
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import psutil

import tracelet_core
from tracelet_core.collectors import Collector, CollectorContext, register_collector

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _outputs.py, beside this file

from _outputs import enter_output_dir


@register_collector
class OpenFilesCollector(Collector):
    """Open files and threads of the training process, as ``process/open_files`` and ``process/threads``."""

    name = "open_files"
    interval = 1.0  # short for the demo; a real run would report every 10-60 s

    def start(self, context: CollectorContext) -> None:
        self._process = psutil.Process()

    def collect(self) -> dict[str, float]:
        return {
            "process/open_files": float(len(self._process.open_files())),
            "process/threads": float(self._process.num_threads()),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Tracelet custom collector example")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long the pretend training runs")
    parser.add_argument("--backend", action="append", help="a tracker to send the run to (repeatable)")
    args = parser.parse_args(argv)
    enter_output_dir()  # everything this example writes goes under ./.tracelet-examples

    with (
        tracelet_core.start_logging(experiment="custom-collector-demo", backends=args.backend) as run,
        tempfile.TemporaryDirectory() as scratch,
        contextlib.ExitStack() as open_files,
    ):
        step = 0
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            # Pretend training that opens a file now and then, so the collector has something to see.
            if step % 5 == 0:
                open_files.enter_context(open(Path(scratch) / f"shard-{step}.bin", "wb"))
            run.log_metric("train/loss", 1.0 / (step + 1), step=step)
            step += 1
            time.sleep(0.1)
    print(f"run {run.id}: see process/open_files and process/threads in your tracker")


if __name__ == "__main__":
    main()
