"""The NVML GPU collector: a stand-in ``pynvml`` with two GPUs, and the real one on a GPU-less machine."""

from __future__ import annotations

import logging
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tracelet_core import errors
from tracelet_core.collectors import CollectorSet, RecordingSink, start_collectors
from tracelet_core.collectors.base import CollectorContext
from tracelet_core.collectors.gpu import GpuCollector
from tracelet_core.settings import TraceletSettings

GIB = 1 << 30
GPU_FIELDS = (
    "utilization_percent",
    "memory_used_mb",
    "memory_total_mb",
    "temperature_c",
    "power_w",
    "sm_clock_mhz",
)


@pytest.fixture(autouse=True)
def _no_collector_thread_left() -> Iterator[None]:
    yield
    assert not [t for t in threading.enumerate() if t.name.startswith("tracelet-collectors")]


class FakeNVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


class FakeNVML(types.ModuleType):
    """A stand-in for the ``pynvml`` module with the calls the collector makes.

    Each device is a dict of values; a list value gives one item per call (the last one repeats);
    an exception value is raised.
    """

    NVMLError = FakeNVMLError
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1

    def __init__(self, devices: list[dict[str, Any]], init_error: Exception | None = None) -> None:
        super().__init__("pynvml")
        self.devices = devices
        self.init_error = init_error
        self.calls: list[tuple[int, str]] = []
        self.initialised = 0

    def _value(self, index: int, field: str) -> Any:
        self.calls.append((index, field))
        item = self.devices[index][field]
        if isinstance(item, list):
            item = item.pop(0) if len(item) > 1 else item[0]
        if isinstance(item, Exception):
            raise item
        return item

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=self._value(handle, "util"), memory=0)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(used=self._value(handle, "mem_used"), total=self._value(handle, "mem_total"), free=0)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return int(self._value(handle, "temperature"))

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return int(self._value(handle, "power_mw"))

    def nvmlDeviceGetClockInfo(self, handle: int, clock: int) -> int:
        assert clock == self.NVML_CLOCK_SM
        return int(self._value(handle, "sm_clock"))


def two_gpus() -> list[dict[str, Any]]:
    return [
        {
            "util": [10, 30],
            "mem_used": [1 * GIB, 3 * GIB],
            "mem_total": 80 * GIB,
            "temperature": [50, 60],
            "power_mw": [200_000, 300_000],
            "sm_clock": 1410,
        },
        {
            "util": 0,
            "mem_used": 0,
            "mem_total": 40 * GIB,
            "temperature": [FakeNVMLError(15), 40],  # a transient error (GPU lost), then a value
            "power_mw": FakeNVMLError(3),  # not supported on this board
            "sm_clock": 210,
        },
    ]


def test_two_gpus_are_reported_per_device_as_means_of_the_samples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nvml = FakeNVML(two_gpus())
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    collector = GpuCollector(interval=1.0)
    collector.start(CollectorContext(tmp_path))
    collector.sample()
    collector.sample()
    report = collector.collect()
    collector.close()

    assert report is not None
    metrics = report.metrics
    assert metrics["system/gpu0/utilization_percent"] == pytest.approx(20.0)
    assert metrics["system/gpu0/memory_used_mb"] == pytest.approx(2048.0)
    assert metrics["system/gpu0/memory_total_mb"] == pytest.approx(81920.0)
    assert metrics["system/gpu0/temperature_c"] == pytest.approx(55.0)
    assert metrics["system/gpu0/power_w"] == pytest.approx(250.0)
    assert metrics["system/gpu0/sm_clock_mhz"] == pytest.approx(1410.0)
    assert metrics["system/gpu1/memory_total_mb"] == pytest.approx(40960.0)
    assert metrics["system/gpu1/temperature_c"] == pytest.approx(40.0), "the failed reading is left out"
    assert "system/gpu1/power_w" not in metrics
    assert {f"system/gpu{i}/{f}" for i in (0, 1) for f in GPU_FIELDS} - set(metrics) == {"system/gpu1/power_w"}
    assert nvml.calls.count((1, "power_mw")) == 1, "an unsupported reading is not asked for again"
    assert nvml.initialised == 0, "close() shuts NVML down"


def test_gpu_metrics_reach_the_run_and_nvml_is_shut_down_at_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nvml = FakeNVML(two_gpus())
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    sink = RecordingSink(tmp_path)
    settings = TraceletSettings(system_metrics=True, git=False, environment=False, system_metrics_interval=0.1)
    collectors = start_collectors(sink, settings)
    time.sleep(0.35)
    collectors.stop()

    keys = sink.metric_keys()
    assert {f"system/gpu0/{field}" for field in GPU_FIELDS} <= keys
    assert "system/gpu1/sm_clock_mhz" in keys
    assert "system/cpu_percent" in keys
    assert all(isinstance(step, int) for _, step, _ in sink.metrics)  # each sample's index
    assert nvml.initialised == 0


def run_gpu_only(tmp_path: Path) -> RecordingSink:
    sink = RecordingSink(tmp_path)
    collectors = CollectorSet(sink, [GpuCollector(interval=0.05)])
    collectors.start()
    time.sleep(0.15)
    collectors.stop()
    return sink


def gpu_log_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("tracelet") and "'gpu'" in r.getMessage()]


@pytest.mark.parametrize(
    "nvml_module",
    [
        pytest.param(None, id="nvidia-ml-py not installed"),
        pytest.param(FakeNVML([], init_error=FakeNVMLError(12)), id="no driver"),
        pytest.param(FakeNVML([]), id="no GPU"),
    ],
)
def test_no_nvml_or_no_gpu_gives_one_debug_line_and_no_warning(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    recwarn: pytest.WarningsRecorder,
    nvml_module: FakeNVML | None,
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", nvml_module)  # None makes "import pynvml" fail
    caplog.set_level(logging.DEBUG, logger="tracelet")
    sink = run_gpu_only(tmp_path)
    assert sink.metrics == []
    lines = gpu_log_lines(caplog)
    assert [r.levelno for r in lines] == [logging.DEBUG]
    assert "no GPU metrics" in lines[0].getMessage()
    assert not [w for w in recwarn if issubclass(w.category, errors.TraceletWarning)]
    if nvml_module is not None:
        assert nvml_module.initialised == 0


def test_real_pynvml_on_a_machine_without_gpu_is_one_debug_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this machine has a working NVML; the stand-in tests cover the no-GPU case")
    caplog.set_level(logging.DEBUG, logger="tracelet")
    sink = run_gpu_only(tmp_path)
    assert sink.metrics == []
    lines = gpu_log_lines(caplog)
    assert [r.levelno for r in lines] == [logging.DEBUG]
    assert "NVML is not available" in lines[0].getMessage()
    assert not [w for w in recwarn if issubclass(w.category, errors.TraceletWarning)]
