"""NVIDIA GPU load from NVML (``nvidia-ml-py``, the ``gpu`` extra), as ``system/gpu<i>/*`` metrics.

Every device NVML sees is reported, numbered as NVML (and ``nvidia-smi``) numbers it, which is not
necessarily the numbering ``CUDA_VISIBLE_DEVICES`` gives inside the process. Like the system
collector, devices are read every ``sample_interval`` seconds and each report is the mean of the
readings since the previous one. Without ``nvidia-ml-py``, without a driver or without a GPU the
collector is skipped with one debug log line.

``pynvml`` is imported when the run starts, never when this module is imported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tracelet_core.collectors.base import (
    Collected,
    Collector,
    CollectorContext,
    CollectorUnavailableError,
    MeanWindow,
)

__all__ = ["GpuCollector"]

MIB = float(1 << 20)
_NVML_ERROR_NOT_SUPPORTED = 3  # pynvml.NVML_ERROR_NOT_SUPPORTED, for stand-ins that lack the name


def _memory(nvml: Any, handle: Any) -> dict[str, float]:
    info = nvml.nvmlDeviceGetMemoryInfo(handle)
    return {"memory_used_mb": info.used / MIB, "memory_total_mb": info.total / MIB}


# One reader per NVML call, so that a call a device does not support costs only its own metrics.
_READERS: dict[str, Callable[[Any, Any], dict[str, float]]] = {
    "utilization": lambda nvml, h: {"utilization_percent": float(nvml.nvmlDeviceGetUtilizationRates(h).gpu)},
    "memory": _memory,
    "temperature": lambda nvml, h: {
        "temperature_c": float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU))
    },
    # NVML reports milliwatts.
    "power": lambda nvml, h: {"power_w": nvml.nvmlDeviceGetPowerUsage(h) / 1000.0},
    "sm_clock": lambda nvml, h: {"sm_clock_mhz": float(nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM))},
}


class GpuCollector(Collector):
    """Utilisation, memory, temperature, power and SM clock of each NVIDIA GPU.

    Args:
        interval: seconds between two reports.
        sample_interval: seconds between two readings; ``min(interval, 1)`` when None.
        prefix: put before every metric name (``system/gpu0/...``).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> collector = GpuCollector(interval=10.0)
        >>> collector.start(CollectorContext(Path(tempfile.mkdtemp())))  # doctest: +SKIP
        >>> collector.sample(); sorted(collector.collect().metrics)[:2]  # doctest: +SKIP
        ['system/gpu0/memory_total_mb', 'system/gpu0/memory_used_mb']
        >>> collector.close()
    """

    name = "gpu"

    def __init__(self, interval: float = 10.0, sample_interval: float | None = None, prefix: str = "system/"):
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.interval = interval
        self.sample_interval = min(interval, 1.0) if sample_interval is None else sample_interval
        self.prefix = prefix
        self._nvml: Any = None
        self._handles: list[Any] = []
        self._unsupported: set[tuple[int, str]] = set()
        self._window = MeanWindow()
        self._next_step = 0

    def start(self, context: CollectorContext) -> None:
        try:
            import pynvml
        except ImportError as exc:
            raise CollectorUnavailableError(
                f"nvidia-ml-py is not installed ({exc}); no GPU metrics. "
                "pip install 'tracelet-lightning[gpu]' to record them."
            ) from exc
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ... : no usable GPU
            raise CollectorUnavailableError(f"NVML is not available ({exc}); no GPU metrics.") from exc
        try:
            count = pynvml.nvmlDeviceGetCount()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception as exc:
            pynvml.nvmlShutdown()
            raise CollectorUnavailableError(f"NVML cannot list the GPUs ({exc}); no GPU metrics.") from exc
        if not handles:
            pynvml.nvmlShutdown()
            raise CollectorUnavailableError("NVML sees no GPU; no GPU metrics.")
        self._nvml, self._handles = pynvml, handles
        self._unsupported.clear()
        self._window = MeanWindow()
        self._next_step = context.first_sample

    def sample(self) -> None:
        nvml = self._nvml
        reading: dict[str, float] = {}
        for index, handle in enumerate(self._handles):
            for reader_name, read in _READERS.items():
                if (index, reader_name) in self._unsupported:
                    continue
                try:
                    values = read(nvml, handle)
                except nvml.NVMLError as exc:
                    # Not supported (power on some boards, utilisation on MIG) never will be; other
                    # errors (a GPU that fell off the bus) are retried at the next reading.
                    if getattr(exc, "value", None) == getattr(
                        nvml, "NVML_ERROR_NOT_SUPPORTED", _NVML_ERROR_NOT_SUPPORTED
                    ):
                        self._unsupported.add((index, reader_name))
                    continue
                reading.update({f"gpu{index}/{key}": value for key, value in values.items()})
        self._window.add(reading)

    def collect(self) -> Collected | None:
        if not len(self._window):
            return None
        means = self._window.take()
        self._next_step += 1
        return Collected(
            {self.prefix + k: v for k, v in means.items()}, timestamp=time.time(), step=self._next_step - 1
        )

    def close(self) -> None:
        if self._nvml is not None:
            nvml, self._nvml = self._nvml, None
            nvml.nvmlShutdown()
