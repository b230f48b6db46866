"""Custom collectors: the Collector base, registration, entry points, failure isolation, thread lifecycle."""

from __future__ import annotations

import importlib.util
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import tracelet_core.collectors as collectors_module
from tests.support.waiting import wait_until
from tracelet_core import errors
from tracelet_core.collectors import (
    Collected,
    Collector,
    CollectorContext,
    CollectorSet,
    RecordingSink,
    register_collector,
    start_collectors,
    unregister_collector,
)
from tracelet_core.settings import TraceletSettings

EXAMPLE = Path(__file__).parents[3] / "examples" / "custom_collector.py"


def collector_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tracelet-collectors") and t.is_alive()]


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(collectors_module, "_registered", [])
    yield
    assert collector_threads() == [], "a collector thread outlived its test"


def no_builtins() -> TraceletSettings:
    return TraceletSettings(system_metrics=False, git=False, environment=False)


def tracelet_warnings(recwarn: pytest.WarningsRecorder) -> list[str]:
    return [str(w.message) for w in recwarn if issubclass(w.category, errors.TraceletWarning)]


class Ticker(Collector):
    name = "ticker"
    interval = 0.02

    def __init__(self) -> None:
        self.ticks = 0

    def collect(self) -> Mapping[str, float]:
        self.ticks += 1
        return {"custom/ticks": float(self.ticks)}


class Describer(Collector):
    """A one-shot collector that writes a file and logs it with tags and params."""

    def start(self, context: CollectorContext) -> None:
        self.path = context.path_for("notes.txt")

    def collect(self) -> Collected:
        self.path.write_text("dataset v3\n")
        return Collected(
            tags={"data.version": "v3"}, params={"data/rows": 1000}, artifacts={"custom/notes.txt": self.path}
        )


class Broken(Collector):
    name = "broken"
    interval: float | None = 0.02

    def __init__(self, fail_in: str = "collect") -> None:
        self.fail_in = fail_in
        self.calls = 0

    def start(self, context: CollectorContext) -> None:
        if self.fail_in == "start":
            raise RuntimeError("cannot open the device")

    def collect(self) -> Mapping[str, float]:
        self.calls += 1
        if self.fail_in == "collect":
            raise RuntimeError("sensor unplugged")
        return {"broken/value": 1.0}

    def close(self) -> None:
        if self.fail_in == "close":
            raise RuntimeError("close failed")


def run_for(seconds: float, *collectors: Collector, sink: RecordingSink) -> CollectorSet:
    running = CollectorSet(sink, list(collectors))
    running.start()
    time.sleep(seconds)
    running.stop()
    return running


def test_periodic_collector_reports_with_no_step_until_stopped(tmp_path: Path) -> None:
    sink = RecordingSink(tmp_path)
    ticker = Ticker()
    running = CollectorSet(sink, [ticker])
    running.start()
    wait_until(lambda: ticker.ticks >= 3, what="three ticks")
    running.stop()
    ticks_at_stop = ticker.ticks
    assert ticks_at_stop >= 3
    assert [m["custom/ticks"] for m, _, _ in sink.metrics] == [float(i) for i in range(1, ticks_at_stop + 1)]
    assert all(step is None and timestamp is not None for _, step, timestamp in sink.metrics)
    time.sleep(0.1)
    assert ticker.ticks == ticks_at_stop, "nothing runs after stop"


def test_one_shot_collector_logs_tags_params_and_artifacts_once(tmp_path: Path) -> None:
    sink = RecordingSink(tmp_path)
    run_for(0.05, Describer(), sink=sink)
    assert sink.tags == {"data.version": "v3"}
    assert sink.params == {"data/rows": 1000}
    assert sink.artifacts["custom/notes.txt"].read_text() == "dataset v3\n"
    assert sink.artifacts["custom/notes.txt"].parent == tmp_path / "collected"
    assert sink.metrics == []


def test_registered_classes_factories_and_instances_join_every_run(tmp_path: Path) -> None:
    instance = Ticker()
    assert register_collector(Describer) is Describer, "usable as a decorator"
    register_collector(lambda: Ticker())
    register_collector(instance)
    register_collector(instance)  # twice is once
    for attempt in range(2):
        sink = RecordingSink(tmp_path / f"run{attempt}")
        running = start_collectors(sink, no_builtins())
        wait_until(lambda sink=sink: "custom/ticks" in sink.metric_keys(), what="a tick")
        running.stop()
        assert sink.tags == {"data.version": "v3"}
    assert instance.ticks > 0
    unregister_collector(Describer)
    sink = RecordingSink(tmp_path / "after")
    start_collectors(sink, no_builtins()).stop()
    assert sink.tags == {}


def test_register_rejects_what_is_not_a_collector() -> None:
    with pytest.raises(TypeError, match="Collector"):
        register_collector("not a collector")  # type: ignore[type-var]


def test_extra_collectors_are_for_one_run_only(tmp_path: Path) -> None:
    sink = RecordingSink(tmp_path)
    start_collectors(sink, no_builtins(), extra=[Describer()]).stop()
    assert sink.tags == {"data.version": "v3"}


@pytest.mark.parametrize("fail_in", ["collect", "start", "close"])
def test_a_failing_collector_warns_once_and_the_others_go_on(
    tmp_path: Path, recwarn: pytest.WarningsRecorder, fail_in: str
) -> None:
    sink = RecordingSink(tmp_path)
    broken = Broken(fail_in)
    run_for(0.2, broken, Ticker(), Describer(), sink=sink)

    messages = tracelet_warnings(recwarn)
    assert len(messages) == 1, messages
    assert "'broken'" in messages[0] and f"{fail_in}()" in messages[0]
    assert "custom/ticks" in sink.metric_keys()
    assert sink.tags == {"data.version": "v3"}
    if fail_in == "collect":
        assert broken.calls >= 3, "a collector that failed is tried again at its next interval"
    if fail_in == "start":
        assert broken.calls == 0, "a collector that cannot start is skipped"


@pytest.mark.parametrize(("interval", "sample_interval"), [(0, None), (-1.0, None), ("10", None), (1.0, 0)])
def test_a_collector_with_a_bad_interval_is_skipped_with_a_warning(
    tmp_path: Path, recwarn: pytest.WarningsRecorder, interval: Any, sample_interval: Any
) -> None:
    bad = Ticker()
    bad.name, bad.interval, bad.sample_interval = "bad-interval", interval, sample_interval
    sink = RecordingSink(tmp_path)
    run_for(0.05, bad, Describer(), sink=sink)
    assert bad.ticks == 0
    assert sink.tags == {"data.version": "v3"}
    messages = tracelet_warnings(recwarn)
    assert len(messages) == 1 and "must be a number of seconds > 0" in messages[0]


def test_a_failing_one_shot_collector_does_not_stop_the_next_one(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    class BrokenOnce(Broken):
        name = "broken-once"
        interval = None

    sink = RecordingSink(tmp_path)
    run_for(0.05, BrokenOnce(), Describer(), sink=sink)
    assert sink.tags == {"data.version": "v3"}
    assert len(tracelet_warnings(recwarn)) == 1


def test_bad_values_and_bad_return_types_are_warned_about(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    class Mixed(Collector):
        interval = 0.05

        def collect(self) -> Mapping[str, Any]:
            return {"ok": 1, "text": "n/a"}

    class WrongType(Collector):
        def collect(self) -> Any:
            return ["not", "a", "mapping"]

    sink = RecordingSink(tmp_path)
    run_for(0.12, Mixed(), WrongType(), sink=sink)
    assert sink.metric_keys() == {"ok"}
    messages = tracelet_warnings(recwarn)
    assert len(messages) == 2, messages
    assert any("text='n/a'" in m for m in messages)
    assert any("WrongType" in m and "returned a list" in m for m in messages)


def test_a_sink_that_raises_is_isolated_too(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    class RefusingSink(RecordingSink):
        def log_metrics(
            self, metrics: dict[str, float], step: int | None = None, timestamp: float | None = None
        ) -> None:
            raise OSError("queue closed")

    sink = RefusingSink(tmp_path)
    run_for(0.1, Ticker(), Describer(), sink=sink)
    assert sink.tags == {"data.version": "v3"}
    assert len(tracelet_warnings(recwarn)) == 1


def test_stop_gives_up_on_a_hanging_collector_and_drops_its_late_data(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    release = threading.Event()

    class Hanging(Collector):
        def collect(self) -> Collected:
            release.wait(10)
            return Collected(tags={"late": "true"})

    sink = RecordingSink(tmp_path)
    running = CollectorSet(sink, [Hanging()])
    running.start()
    began = time.perf_counter()
    running.stop(timeout=0.3)
    assert 0.25 <= time.perf_counter() - began < 2.0
    assert any("still running" in m for m in tracelet_warnings(recwarn))

    release.set()
    for thread in collector_threads():
        thread.join(5)
    assert sink.tags == {}, "what a collector produces after stop is not recorded"


def test_stop_is_idempotent_and_fast_without_collectors(tmp_path: Path) -> None:
    running = start_collectors(RecordingSink(tmp_path), no_builtins())
    running.stop()
    running.stop()
    disabled = start_collectors(RecordingSink(tmp_path), TraceletSettings(enabled=False))
    assert collector_threads() == []
    disabled.stop()


def test_entry_point_collectors_are_loaded_and_a_broken_one_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder
) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "tracelet_demo_plugin.py").write_text(
        textwrap.dedent(
            """
            from tracelet_core.collectors import Collected, Collector

            class QueueDepth(Collector):
                def collect(self):
                    return Collected(tags={"plugin": "loaded"})
            """
        )
    )
    dist_info = plugins / "tracelet_demo_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: tracelet-demo-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        "[tracelet.collectors]\n"
        "queue_depth = tracelet_demo_plugin:QueueDepth\n"
        "missing = tracelet_no_such_module:Collector\n"
    )
    monkeypatch.syspath_prepend(str(plugins))

    sink = RecordingSink(tmp_path / "run")
    start_collectors(sink, no_builtins()).stop()

    assert sink.tags == {"plugin": "loaded"}
    messages = tracelet_warnings(recwarn)
    assert len(messages) == 1 and "tracelet_no_such_module" in messages[0]


def test_the_example_collector_counts_open_files(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("custom_collector_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.OpenFilesCollector in collectors_module._registered, "the example registers itself"

    sink = RecordingSink(tmp_path / "run")
    with open(tmp_path / "held-open.txt", "w"):
        start_collectors(sink, no_builtins()).stop()
    first, step, _ = sink.metrics[0]
    assert step is None
    assert first["process/open_files"] >= 1.0
    assert first["process/threads"] >= 2.0, "the main thread and the collector thread"
