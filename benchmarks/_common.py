"""Helpers of the Lightning benchmark: isolated environments, CPU accounting, in-band timing, store readers.

Nothing here imports Lightning, torch or a tracker SDK at import time, so the parent stays light
and each child pays only for what its configuration needs. The readers are the test suite's
(``tests/support``): each store is read back through its tracker's own format or API.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
# Every process a benchmark child starts (Tracelet's delivery process, wandb-core, ...) inherits this
# variable, so the parent can find them even when they left the child's session.
TAG_VARIABLE = "TRACELET_BENCH_TAG"
SERVER_TAG_VARIABLE = "TRACELET_BENCH_SERVER_TAG"  # the tag of the shared mlflow server's processes
_SDK_PREFIXES = ("TRACELET_", "MLFLOW_", "WANDB_", "CLEARML_", "AIM_")

CLEARML_CONFIG = """\
# ClearML's subprocess reporter loses its events in offline mode and makes Task.close() wait for
# minutes; reporting from a thread of the calling process avoids that (TRACKERS.md).
sdk.development.report_use_subprocess: false
"""


def isolated_env(workdir: Path, tag: str, **extra: str) -> dict[str, str]:
    """The environment of one benchmark child: every tracker's files, caches and config under ``workdir``.

    Tracker and Tracelet variables of the caller are dropped so that each configuration sees only
    what the benchmark sets.
    """
    home = workdir / "home"
    for sub in (".config", ".cache", ".local/share"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    clearml_conf = workdir / "clearml.conf"
    clearml_conf.write_text(CLEARML_CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SDK_PREFIXES)}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local/share"),
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        WANDB_DIR=str(workdir),
        CLEARML_OFFLINE_MODE="1",
        CLEARML_CACHE_DIR=str(workdir / "clearml"),
        CLEARML_CONFIG_FILE=str(clearml_conf),
    )
    env[TAG_VARIABLE] = tag
    env.update(extra)
    return env


def tagged_processes(tag: str) -> list[psutil.Process]:
    """Processes of this user whose environment carries ``TRACELET_BENCH_TAG=tag`` (this one excluded)."""
    found = []
    me = os.getpid()
    for process in psutil.process_iter(["pid"]):
        if process.pid == me:
            continue
        try:
            if process.environ().get(TAG_VARIABLE) == tag:
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def wait_for_tagged_processes(tag: str, timeout: float) -> float:
    """Wait until every process tagged ``tag`` has exited; kill (by pid) what is left after ``timeout``.

    Returns:
        Seconds waited.
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not tagged_processes(tag):
            return time.monotonic() - start
        time.sleep(0.2)
    for process in tagged_processes(tag):
        with contextlib.suppress(psutil.Error):
            process.kill()
    return time.monotonic() - start


def tagged_cpu_seconds(tag: str) -> float:
    """User + system CPU seconds used so far by the processes tagged ``tag`` (this one excluded)."""
    total = 0.0
    for process in tagged_processes(tag):
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used (every core, since boot)."""
    times = psutil.cpu_times()
    return sum(getattr(times, field, 0.0) for field in ("user", "nice", "system", "irq", "softirq"))


def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds of each live thread of this process, read from its POSIX CPU-time clock."""
    seconds = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            seconds[f"{thread.name}#{thread.ident}"] = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except (OSError, AttributeError):  # the thread just ended, or no such clock on this platform
            continue
    return seconds


class InBandTimer:
    """Mixed in front of a Logger class: times ``log_metrics`` and ``save`` on the calling thread."""

    inband_ns = 0
    log_calls = 0

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        start = time.perf_counter_ns()
        try:
            super().log_metrics(metrics, step)  # type: ignore[misc]
        finally:
            self.inband_ns += time.perf_counter_ns() - start
            self.log_calls += 1

    def save(self) -> None:
        start = time.perf_counter_ns()
        try:
            super().save()  # type: ignore[misc]
        finally:
            self.inband_ns += time.perf_counter_ns() - start


def timed(cls: type) -> Callable[..., Any]:
    """``cls`` with :class:`InBandTimer` in front: the same measurement for every logger."""
    return type(f"Timed{cls.__name__}", (InBandTimer, cls), {})


# -- reading each store back (SDKs and readers imported on use) ---------------------------------


def tracelet_report(logger: Any) -> Any:
    """The run's delivery state now, read from its journal (the finalize report may predate the last ack)."""
    from tracelet_core.pipeline.journal import Journal
    from tracelet_core.pipeline.report import read_report

    with Journal(Path(logger.report.journal)) as journal:
        return read_report(journal, logger.report.run_id, logger.report.status)


def count_journal(path: Path, keys: list[str]) -> int:
    from tracelet_core.pipeline.journal import Journal

    wanted, found, after = set(keys), 0, 0
    with Journal(path) as journal:
        while events := journal.read(after, 50_000):
            found += sum(1 for e in events if e.kind == "metric" and e.key in wanted)
            after = events[-1].seq
    return found


def count_csv(path: Path, keys: list[str]) -> int:
    import csv

    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return sum(1 for row in rows for key in keys if row.get(key) not in (None, ""))


def count_mlflow(uri: str | None, run_id: str, keys: list[str]) -> int:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    return sum(len(client.get_metric_history(run_id, key)) for key in keys)


def count_wandb(path: Path, keys: list[str]) -> int:
    from tests.support.wandb_reader import read_run

    history = read_run(path).history
    return sum(1 for row in history for key in keys if key in row)


def count_aim(repo: str, run_hash: str, keys: list[str]) -> int:
    from tests.support.aim_reader import read_run

    wanted = set(keys)
    return sum(len(points) for (name, _), points in read_run(repo, run_hash).metrics.items() if name in wanted)


def count_clearml(cache_dir: Path, task_id: str, keys: list[str]) -> int:
    from tests.support.clearml_reader import read_session, session_folder

    wanted = {(key, key) for key in keys}  # a key without "/" is both title and series
    scalars = read_session(session_folder(cache_dir, task_id)).scalars()
    return sum(len(points) for name, points in scalars.items() if name in wanted)


def wait_for_quiet(max_busy_percent: float, timeout: float, window: float = 2.0) -> float:
    """Wait until the machine's CPUs were at most ``max_busy_percent`` busy over ``window`` seconds, or
    ``timeout`` seconds have passed; returns the seconds waited."""
    start = time.monotonic()
    cpus = os.cpu_count() or 1
    while True:
        busy, began = machine_busy_seconds(), time.monotonic()
        time.sleep(window)
        percent = (machine_busy_seconds() - busy) / ((time.monotonic() - began) * cpus) * 100
        if percent <= max_busy_percent or time.monotonic() - start >= timeout:
            return time.monotonic() - start


def median(values: Iterable[float | None]) -> float | None:
    """Median of the values that are not None (None if there are none)."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def time_imports(
    cases: Mapping[str, tuple[str, str]], repeats: int, env: dict[str, str]
) -> dict[str, list[tuple[float, float]]]:
    """Time imports in fresh interpreters, ``repeats`` times per case, the cases interleaved.

    Args:
        cases: name -> (setup statement, measured statement), e.g. ``("import lightning.pytorch",
            "import tracelet_lightning")``.
        repeats: timed interpreters per case; one untimed round runs first, so byte-code
            compilation is not counted.
        env: the interpreters' environment.

    Returns:
        name -> [(seconds for setup + measured, seconds for measured alone), ...].
    """
    code = (
        "import time; t0 = time.perf_counter(); {setup}; t1 = time.perf_counter(); {stmt}; "
        "t2 = time.perf_counter(); print(t2 - t0, t2 - t1)"
    )
    seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for round_ in range(repeats + 1):
        for name, (setup, stmt) in cases.items():
            out = subprocess.run(
                [sys.executable, "-c", code.format(setup=setup or "pass", stmt=stmt)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
                timeout=120,
            )
            total, measured = out.stdout.strip().splitlines()[-1].split()
            if round_:
                seconds[name].append((float(total), float(measured)))
    return seconds


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = (str(c) for c in cells)
        return "  ".join([first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))])

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)])
