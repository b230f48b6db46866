"""The psutil system collector, read against the real machine, and the collector thread's lifecycle."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.waiting import wait_until
from tracelet_core.collectors import CollectorSet, RecordingSink, start_collectors
from tracelet_core.collectors import system as system_module
from tracelet_core.collectors.base import CollectorContext
from tracelet_core.collectors.system import SystemCollector
from tracelet_core.settings import TraceletSettings

SYSTEM_METRICS = {
    "system/cpu_percent",
    "system/process_cpu_percent",
    "system/memory_percent",
    "system/memory_used_mb",
    "system/process_rss_mb",
    "system/disk_read_mb",
    "system/disk_write_mb",
    "system/disk_usage_percent",
    "system/net_sent_mb",
    "system/net_recv_mb",
}


def collector_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("tracelet-collectors") and t.is_alive()]


@pytest.fixture(autouse=True)
def _no_collector_thread_left() -> Iterator[None]:
    yield
    assert collector_threads() == [], "a collector thread outlived its test"


def only_system(interval: float) -> TraceletSettings:
    # Explicit arguments: the suite's conftest switches every collector off through TRACELET_* variables.
    return TraceletSettings(system_metrics=True, git=False, environment=False, system_metrics_interval=interval)


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_one_report_has_every_documented_metric_with_sane_values(tmp_path: Path) -> None:
    collector = SystemCollector(interval=1.0)
    collector.start(CollectorContext(tmp_path))
    collector.sample()
    spin(0.3)
    collector.sample()
    before = time.time()
    report = collector.collect()

    assert report is not None
    metrics = report.metrics
    assert set(metrics) == SYSTEM_METRICS
    assert report.timestamp is not None
    assert before <= report.timestamp <= time.time()
    assert 0.0 <= metrics["system/cpu_percent"] <= 100.0
    assert metrics["system/process_cpu_percent"] > 20.0  # we just kept one core busy for 0.3 s
    assert 0.0 < metrics["system/memory_percent"] <= 100.0
    assert metrics["system/memory_used_mb"] > 1.0
    assert metrics["system/process_rss_mb"] > 1.0
    assert 0.0 < metrics["system/disk_usage_percent"] <= 100.0
    for counter in ("disk_read_mb", "disk_write_mb", "net_sent_mb", "net_recv_mb"):
        assert metrics[f"system/{counter}"] >= 0.0


def test_counters_are_totals_since_start_and_never_go_down(tmp_path: Path) -> None:
    collector = SystemCollector(interval=1.0)
    collector.start(CollectorContext(tmp_path))
    collector.sample()
    first = collector.collect()
    (tmp_path / "blob").write_bytes(b"x" * (1 << 20))
    collector.sample()
    second = collector.collect()
    assert first is not None and second is not None
    for counter in ("disk_read_mb", "disk_write_mb", "net_sent_mb", "net_recv_mb"):
        assert second.metrics[f"system/{counter}"] >= first.metrics[f"system/{counter}"]


def test_memory_is_the_mean_of_the_samples_since_the_last_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readings = iter([SimpleNamespace(percent=10.0, used=100 << 20), SimpleNamespace(percent=30.0, used=300 << 20)])
    monkeypatch.setattr(system_module.psutil, "virtual_memory", lambda: next(readings))
    collector = SystemCollector(interval=1.0)
    collector.start(CollectorContext(tmp_path))
    collector.sample()
    collector.sample()
    report = collector.collect()
    assert report is not None
    assert report.metrics["system/memory_percent"] == pytest.approx(20.0)
    assert report.metrics["system/memory_used_mb"] == pytest.approx(200.0)
    assert collector.collect() is None, "no sample since the last report: nothing to report"


def test_prefix_hook_names_every_metric(tmp_path: Path) -> None:
    collector = SystemCollector(interval=1.0, prefix="system/node1/")
    collector.start(CollectorContext(tmp_path))
    collector.sample()
    spin(0.05)  # CPU time advances in 10 ms ticks; with none elapsed there is no CPU share to report
    report = collector.collect()
    assert report is not None
    assert {key.replace("node1/", "") for key in report.metrics} == SYSTEM_METRICS


def test_sampling_is_separate_from_reporting(tmp_path: Path) -> None:
    class CountingSystemCollector(SystemCollector):
        samples = 0

        def sample(self) -> None:
            type(self).samples += 1
            super().sample()

    sink = RecordingSink(tmp_path)
    collectors = CollectorSet(sink, [CountingSystemCollector(interval=0.6, sample_interval=0.05)])
    began = time.monotonic()
    collectors.start()
    wait_until(lambda: CountingSystemCollector.samples >= 12, what="12 samples")
    collectors.stop()
    elapsed = time.monotonic() - began
    # One report per 0.6 s and the last one at stop, however many samples were taken.
    assert 1 <= len(sink.metrics) <= elapsed / 0.6 + 1
    assert len(sink.metrics) < CountingSystemCollector.samples
    assert [step for _, step, _ in sink.metrics] == list(range(len(sink.metrics)))


def test_run_gets_system_metrics_with_their_sample_index_as_step_and_the_wall_time(tmp_path: Path) -> None:
    sink = RecordingSink(tmp_path)
    started = time.time()
    collectors = start_collectors(sink, only_system(0.2))
    wait_until(lambda: len(sink.metrics) >= 2, what="two system-metric points")
    collectors.stop()
    assert [step for _, step, _ in sink.metrics] == list(range(len(sink.metrics)))
    for metrics, _, timestamp in sink.metrics:
        assert set(metrics) == SYSTEM_METRICS
        assert timestamp is not None and started <= timestamp <= time.time()
    timestamps = [ts for _, _, ts in sink.metrics if ts is not None]
    assert timestamps == sorted(timestamps)


def test_a_run_shorter_than_the_interval_still_gets_a_point_and_stop_does_not_wait(tmp_path: Path) -> None:
    sink = RecordingSink(tmp_path)
    collectors = start_collectors(sink, only_system(10.0))
    time.sleep(0.2)
    began = time.perf_counter()
    collectors.stop()
    assert time.perf_counter() - began < 1.0
    assert len(sink.metrics) == 1
    assert set(sink.metrics[0][0]) == SYSTEM_METRICS
    collectors.stop()  # idempotent
    assert len(sink.metrics) == 1


def test_periodic_thread_is_named_and_daemon_while_running(tmp_path: Path) -> None:
    collectors = start_collectors(RecordingSink(tmp_path), only_system(5.0))
    try:
        threads = [t for t in threading.enumerate() if t.name == "tracelet-collectors"]
        assert len(threads) == 1
        assert threads[0].daemon
    finally:
        collectors.stop()


def test_system_metrics_off_starts_no_system_collector(tmp_path: Path) -> None:
    sink = RecordingSink(tmp_path)
    settings = TraceletSettings(system_metrics=False, git=False, environment=False)
    collectors = start_collectors(sink, settings)
    time.sleep(0.1)
    collectors.stop()
    assert sink.metrics == []


def test_rejects_a_non_positive_interval() -> None:
    with pytest.raises(ValueError, match="interval"):
        SystemCollector(interval=0)


def test_sample_steps_go_on_from_where_collectors_they_replace_stopped(tmp_path: Path) -> None:
    sink = RecordingSink(tmp_path)
    first = start_collectors(sink, only_system(0.2))
    wait_until(lambda: len(sink.metrics) >= 2, what="two system-metric points")
    first.stop()
    second = start_collectors(sink, only_system(0.2), first_sample=first.next_sample)
    second.stop()
    steps = [step for _, step, _ in sink.metrics]
    assert steps == list(range(len(steps))) and len(steps) >= 3


def test_a_resumed_run_goes_on_counting_its_samples(tmp_path: Path) -> None:
    import tracelet_core
    from tracelet_core.pipeline.journal import Journal

    options = {
        "backends": [],
        "journal_dir": str(tmp_path / "journal"),
        "system_metrics": True,
        "system_metrics_interval": 0.1,
    }

    def steps(run: tracelet_core.Run) -> list[int | None]:
        run.flush()
        with Journal(run.journal_path) as journal:
            return [event.step for event in journal.metric_history("system/memory_percent")]

    first = tracelet_core.start_logging(**options)
    wait_until(lambda: len(steps(first)) >= 2, what="two samples")
    first.finish()
    before = len(steps(first))
    again = tracelet_core.start_logging(run_id=first.id, **options)
    wait_until(lambda: len(steps(again)) > before, what="a sample of the resumed run")
    again.finish()
    recorded = steps(again)
    assert recorded == list(range(len(recorded)))
