"""Ordinary faults lose nothing and stall nothing: a killed delivery process, a full or deleted journal,
a tracker that refuses one event or is misconfigured, a second process on the same run.

Every test waits on events (a report, a condition with a deadline), never on a fixed sleep.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import tracelet_core
from tests.support.fault_backends import MISCONFIGURED, POISON, SLOW, MisconfiguredBackend, SlowBackend
from tests.support.waiting import wait_until
from tracelet_core.errors import RunInUseError, TraceletWarning
from tracelet_core.pipeline.delivery_process import supervise
from tracelet_core.pipeline.journal import Journal
from tracelet_core.testing import MEMORY, InMemoryBackend

ROOT = Path(__file__).resolve().parents[2]


def delivery_process(run: tracelet_core.Run) -> psutil.Process:
    """The run's delivery process (a child of this process whose command line names the run's journal)."""
    found: list[psutil.Process] = []

    def delivers_the_run(child: psutil.Process) -> bool:
        try:
            return str(run.journal_path) in " ".join(child.cmdline())
        except psutil.Error:  # ended (a zombie until the run reaps it)
            return False

    def look() -> bool:
        found[:] = [child for child in psutil.Process().children() if delivers_the_run(child)]
        return bool(found)

    wait_until(look, 30, "the delivery process")
    return found[0]


def mlflow_history(uri: str, native_id: str, key: str) -> list[tuple[int, float]]:
    from mlflow.tracking import MlflowClient

    return sorted((m.step, m.value) for m in MlflowClient(uri).get_metric_history(native_id, key))


# -- the delivery process -----------------------------------------------------------------------


def test_a_killed_delivery_process_is_replaced_and_the_run_ends_delivered(mlflow_uri: str) -> None:
    run = tracelet_core.start_logging("faults", backends=["mlflow"], max_retry_backoff=1.0)
    for step in range(1500):
        run.log_metric("loss", float(step), step=step)
    run.flush()
    first = delivery_process(run)
    wait_until(lambda: run.report().backends[0].delivered > 0, what="delivery under way")
    first.kill()  # not waited for here: its parent, the run, must see how it ended
    wait_until(lambda: delivery_process(run).pid != first.pid, what="a new delivery process")
    for step in range(1500, 3000):
        run.log_metric("loss", float(step), step=step)

    report = run.finish(timeout=120)

    assert report.complete, report.summary()
    native = run.backend_run_ids["mlflow"]
    assert mlflow_history(mlflow_uri, native, "loss") == [(s, float(s)) for s in range(3000)]
    from mlflow.tracking import MlflowClient

    assert MlflowClient(mlflow_uri).get_run(native).info.status == "FINISHED"
    log = (run.run_dir / "delivery.log").read_text()
    assert "ended with signal SIGKILL; starting a new one (1/5)" in log


def test_give_up_after_counts_time_without_progress(isolated: Path) -> None:
    """A slow tracker that keeps taking events is never abandoned, however long it takes after training."""
    SlowBackend.delay = 0.15
    run = tracelet_core.start_logging("faults", backends=[])
    for step in range(12):
        run.log_text("note", f"text {step}", step=step)
    run.finish()  # the trainer's part is over: delivery alone is left, as after a training script exits
    with Journal(run.journal_path) as journal:
        journal.set_meta(backends=[SLOW])
        journal.register_backends([SLOW])
    started = time.monotonic()

    assert supervise(run.journal_path, give_up_after=0.5) == 0

    assert time.monotonic() - started > 1.0  # longer than give_up_after, yet it went on
    recorded = InMemoryBackend.runs[run.backend_run_ids[SLOW]]
    assert [m.step for m in recorded.media] == list(range(12))
    assert recorded.status == "FINISHED"


def test_a_killed_trainer_gets_an_end_time(isolated: Path) -> None:
    script = textwrap.dedent(
        """
        import os, signal, sys, tracelet_core
        run = tracelet_core.start_logging("faults", backends=[sys.argv[1]], journal_dir=sys.argv[2])
        run.log_metric("loss", 0.5, step=1)
        run.flush()
        print(run.journal_path, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", script, "tests.support.jsonl_backend:JsonLinesBackend", str(isolated / "journals")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    journal_path = Path(result.stdout.strip())

    def ended() -> float | None:
        with Journal(journal_path) as journal:
            return journal.meta().ended

    wait_until(ended, 60, "the delivery process to end the run")
    with Journal(journal_path) as journal:
        meta = journal.meta()
    assert meta.status == "KILLED"
    assert meta.ended is not None and meta.created is not None and meta.ended >= meta.created


# -- what a tracker refuses ---------------------------------------------------------------------


def test_a_refused_event_is_set_aside_and_holds_back_nothing() -> None:
    run = tracelet_core.start_logging("faults", backends=[POISON], delivery="thread")
    for step in range(300):
        run.log_metrics({"loss": float(step), "acc": step / 300}, step=step)
        if step == 150:
            run.log_metric("poison/key", 1.0, step=step)
    with pytest.warns(TraceletWarning, match=r"refused the metric 'poison/key' for good"):
        report = run.finish(timeout=60)

    assert report.complete
    (backend,) = report.backends
    assert backend.rejected == 1 and backend.pending == 0
    assert "1 rejected" in report.summary()
    recorded = InMemoryBackend.runs[run.backend_run_ids[POISON]]
    assert recorded.history("loss") == [(s, float(s)) for s in range(300)]
    assert len(recorded.history("acc")) == 300
    assert recorded.status == "FINISHED"
    with Journal(run.journal_path) as journal:
        (rejected,) = journal.rejected()
    assert (rejected.kind, rejected.key) == ("metric", "poison/key")
    assert "invalid metric key" in rejected.reason


def test_a_misconfigured_tracker_is_reported_while_training_runs_and_never_retried() -> None:
    MisconfiguredBackend.opens = 0
    # The warning may come as soon as the run starts (its trackers open at once): watch from the start.
    with pytest.warns(TraceletWarning, match="cannot be used as configured .*no API key"):
        run = tracelet_core.start_logging("faults", backends=[MISCONFIGURED, MEMORY], delivery="thread")
        run.log_metric("loss", 1.0, step=0)
        wait_until(
            lambda: {b.name: b.state for b in run.report().backends}.get(MISCONFIGURED) == "misconfigured",
            what="the configuration error",
        )
        run.flush()
    started = time.monotonic()
    report = run.finish(timeout=60)

    assert time.monotonic() - started < 10  # finish does not wait for a tracker that cannot be used
    states = {b.name: b for b in report.backends}
    assert states[MISCONFIGURED].state == "misconfigured" and states[MISCONFIGURED].pending > 0
    assert "retrying" not in report.summary()
    assert states[MEMORY].complete
    assert MisconfiguredBackend.opens == 1


def test_the_delivery_process_reports_a_misconfigured_tracker_while_training_runs() -> None:
    run = tracelet_core.start_logging("faults", backends=[MISCONFIGURED])  # the default: a delivery process
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.log_metric("loss", 1.0, step=0)
        wait_until(
            lambda: any("cannot be used as configured" in str(w.message) for w in caught),
            what="the delivery process's warning to reach the training process",
        )
    started = time.monotonic()
    report = run.finish(timeout=60)
    assert time.monotonic() - started < 10
    assert report.backends[0].state == "misconfigured" and "no API key" in (report.backends[0].error or "")


# -- the journal --------------------------------------------------------------------------------


def test_a_journal_that_cannot_be_written_keeps_events_in_memory_and_reports_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fault-injecting wrapper around the journal's append (a full disk on any machine)."""
    full = {"disk": False}
    append = Journal.append

    def append_unless_full(self: Journal, rows: object) -> int:
        if full["disk"]:
            raise sqlite3.OperationalError("database or disk is full")
        return append(self, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(Journal, "append", append_unless_full)
    run = tracelet_core.start_logging("faults", backends=[MEMORY], delivery="thread", flush_interval=0.05)
    for step in range(100):
        run.log_metric("loss", float(step), step=step)
    run.flush()
    full["disk"] = True
    with pytest.warns(TraceletWarning, match="cannot write its journal .*database or disk is full"):
        for step in range(100, 200):
            run.log_metric("loss", float(step), step=step)
        run.flush()
    full["disk"] = False  # space freed: what waited in memory goes in
    for step in range(200, 300):
        run.log_metric("loss", float(step), step=step)
    report = run.finish(timeout=60)

    assert report.complete and report.lost == 0, report.summary()
    recorded = InMemoryBackend.runs[run.backend_run_ids[MEMORY]]
    assert recorded.history("loss") == [(s, float(s)) for s in range(300)]


def test_events_beyond_the_memory_bound_are_counted_and_finish_does_not_raise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tracelet_core.pipeline.writer.MAX_UNWRITTEN", 50)
    append = Journal.append
    full = {"disk": False}

    def append_unless_full(self: Journal, rows: object) -> int:
        if full["disk"]:
            raise sqlite3.OperationalError("database or disk is full")
        return append(self, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(Journal, "append", append_unless_full)
    run = tracelet_core.start_logging("faults", backends=[MEMORY], delivery="thread")
    run.log_metric("loss", 0.0, step=0)
    run.flush()
    full["disk"] = True
    with pytest.warns(TraceletWarning, match="cannot write its journal"):
        for step in range(1, 201):
            run.log_metric("loss", float(step), step=step)
        report = run.finish(timeout=5)  # the disk never frees up

    assert report.lost == 201  # 200 metrics and the finish event; the first point was written
    assert "201 logged events could not be kept" in report.summary()


def test_a_journal_deleted_mid_run_is_recreated_and_the_run_goes_on() -> None:
    run = tracelet_core.start_logging("faults", backends=[MEMORY], delivery="thread", flush_interval=0.05)
    for step in range(100):
        run.log_metric("loss", float(step), step=step)
    run.flush()
    wait_until(lambda: run.report().complete, what="the first 100 points delivered")
    shutil.rmtree(run.run_dir)
    with pytest.warns(TraceletWarning, match="was deleted while the run was recording"):
        for step in range(100, 200):
            run.log_metric("loss", float(step), step=step)
        run.flush()
    report = run.finish(timeout=60)

    assert report.complete, report.summary()
    assert run.journal_path.is_file()
    native = run.backend_run_ids[MEMORY]
    recorded = InMemoryBackend.runs[native]
    assert recorded.history("loss") == [(s, float(s)) for s in range(200)]
    assert recorded.status == "FINISHED"
    assert oct(run.run_dir.stat().st_mode & 0o777) == "0o700"


# -- one run, one process -----------------------------------------------------------------------


def test_a_second_process_cannot_record_into_a_live_run(isolated: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, tracelet_core; run = tracelet_core.start_logging('faults', backends=[], run_id='shared1',"
            " journal_dir=sys.argv[1]); run.log_metric('x', 1.0, step=0); run.flush(); print('ready', flush=True);"
            " sys.stdin.read(); run.finish()",
            str(isolated / ".tracelet"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(RunInUseError, match="another live process"):
            tracelet_core.start_logging("faults", backends=[], run_id="shared1")
        from tracelet_lightning import TraceletLogger

        with pytest.raises(RunInUseError, match="shared1"):
            TraceletLogger(experiment="faults", backends=[], run_id="shared1")
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(60)
    # Once that process has ended, the run can be continued.
    run = tracelet_core.start_logging("faults", backends=[], run_id="shared1")
    run.log_metric("x", 2.0, step=1)
    assert run.finish().status == "FINISHED"


@pytest.fixture
def journal_files(isolated: Path) -> Iterator[Path]:
    return isolated / ".tracelet"


def test_journals_are_private_to_their_owner(journal_files: Path) -> None:
    run = tracelet_core.start_logging("faults", backends=[MEMORY], delivery="thread")
    run.log_params({"lr": 0.1})
    run.finish()
    for path in [journal_files, *journal_files.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        if path.is_dir():
            assert mode == 0o700, path
        elif path.name != "config.yaml":  # inside a private directory; written by YAML as any file
            assert mode == 0o600, path


# -- a real full disk ---------------------------------------------------------------------------


@pytest.fixture
def small_disk(isolated: Path) -> Iterator[Path]:
    """A 2 MB tmpfs; skipped where mounting is not allowed (the fault-injecting tests above still run)."""
    disk = isolated / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(disk)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> Path:
    """Fill the disk up to its last ~100 KB, in a file the test deletes to free space."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    filler.write_bytes(b"\0" * max(0, free - 100_000))
    return filler


def _log_2500_points(run: tracelet_core.Run) -> None:
    """Enough to fill what is left of the disk, flushed every 50 points."""
    for step in range(2500):
        run.log_metric("loss", float(step), step=step)
        if step % 50 == 0:
            run.flush()


@pytest.mark.slow
def test_a_full_disk_loses_nothing_the_journal_kept_and_says_what_it_could_not(
    small_disk: Path, mlflow_uri: str
) -> None:
    from mlflow.tracking import MlflowClient

    from tracelet_core.sync import sync_run

    options = {"journal_dir": small_disk / "journals", "max_retry_backoff": 0.5, "flush_interval": 0.05}
    run = tracelet_core.start_logging("faults", backends=["mlflow"], **options)  # type: ignore[arg-type]
    filler = _fill(small_disk)
    with pytest.warns(TraceletWarning, match="cannot write its journal"):
        _log_2500_points(run)
        filler.unlink()  # space again: what waited in memory is written, nothing is lost
        for step in range(2500, 3000):
            run.log_metric("loss", float(step), step=step)
        report = run.finish(timeout=120)
    assert report.complete and report.lost == 0, report.summary()
    native = run.backend_run_ids["mlflow"]
    assert mlflow_history(mlflow_uri, native, "loss") == [(s, float(s)) for s in range(3000)]

    # The disk stays full until the run has ended: what the journal kept is all delivered later, into the
    # same MLflow run, and the report says how much could not be kept.
    second = tracelet_core.start_logging("faults", backends=["mlflow"], **options)  # type: ignore[arg-type]
    filler = _fill(small_disk)
    with pytest.warns(TraceletWarning, match="cannot write its journal"):
        _log_2500_points(second)
        report = second.finish(timeout=10)
    assert report.lost > 0 and f"{report.lost} logged events could not be kept" in report.summary()
    filler.unlink()
    synced = sync_run(second.journal_path, wait=True)
    assert synced.ok, synced.message
    with Journal(second.journal_path) as journal:
        kept = journal.count("metric")
    runs = MlflowClient(mlflow_uri).search_runs(
        [MlflowClient(mlflow_uri).get_experiment_by_name("faults").experiment_id],
        filter_string=f"tags.`tracelet.run_id` = '{second.id}'",
    )
    assert len(runs) == 1  # sync continued the same MLflow run
    history = mlflow_history(mlflow_uri, runs[0].info.run_id, "loss")
    assert len(history) == kept and kept + report.lost >= 2500
    assert history == [(s, float(s)) for s in range(kept)]


# -- a sweep's first minute ---------------------------------------------------------------------

SWEEP_SCRIPT = """
import sys, tracelet_core
run = tracelet_core.start_logging("sweep", backends=["mlflow"], max_retry_backoff=1.0)
for step in range(300):
    run.log_metric("loss", float(step), step=step)
report = run.finish(timeout=240)
print(run.id, report.complete, flush=True)
"""


@pytest.mark.slow
def test_eight_runs_started_at_once_on_a_fresh_mlflow_store_deliver_every_point(isolated: Path) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{isolated / 'fresh.db'}"  # not initialised: the first opens race through its migrations
    env = dict(os.environ, PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=uri)
    trainers = [
        subprocess.Popen([sys.executable, "-c", SWEEP_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for _ in range(8)
    ]
    outputs = [trainer.communicate(timeout=300) for trainer in trainers]
    assert all(trainer.returncode == 0 for trainer in trainers), [err.decode()[-2000:] for _, err in outputs]
    finished = [out.decode().split() for out, _ in outputs]
    assert all(complete == "True" for _, complete in finished), finished

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("sweep")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["tracelet.run_id"] for r in runs) == sorted(run_id for run_id, _ in finished)
    for run in runs:
        assert run.info.status == "FINISHED"
        assert mlflow_history(uri, run.info.run_id, "loss") == [(s, float(s)) for s in range(300)]
