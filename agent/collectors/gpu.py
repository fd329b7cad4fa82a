"""NVIDIA GPUs through NVML (nvidia-ml-py); switches itself off where there is no driver or GPU."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from agent.collectors.base import Collector, SeriesList
from agent.collectors.hostpaths import DEFAULT_PATHS, HostPaths
from agent.collectors.options import DEFAULT_OPTIONS, CollectorOptions
from shared.wire import series_dict

log = logging.getLogger("agent.collectors.gpu")


class GpuCollector(Collector):
    name = "gpu"
    description = "Per-GPU utilisation, memory, temperature and power; off (one log line) without NVML."
    fields = {
        "gpu_utilization_percent": "gauge, percent 0-100 of time a kernel ran, labels gpu (index), name",
        "gpu_memory_used_bytes": "gauge, bytes, label gpu",
        "gpu_memory_total_bytes": "gauge, bytes, label gpu",
        "gpu_memory_usage_percent": "gauge, percent 0-100, label gpu",
        "gpu_temperature_celsius": "gauge, degrees Celsius of the GPU die, label gpu",
        "gpu_power_watts": "gauge, watts drawn by the board, label gpu",
    }

    def __init__(self, paths: HostPaths = DEFAULT_PATHS, options: CollectorOptions = DEFAULT_OPTIONS) -> None:
        super().__init__(paths, options)
        self.enabled = False
        self.reason = ""
        self._nvml: Any = None
        self._gpus: list[tuple[str, Any, str]] = []
        self._missing: set[tuple[str, str]] = set()
        self._start()

    def _start(self) -> None:
        try:
            import pynvml
        except ImportError:
            self._switch_off("the nvidia-ml-py package is not installed")
            return
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            self._switch_off(f"NVML cannot start ({exc}); no NVIDIA driver on this host")
            return
        self._nvml = pynvml
        try:
            count = pynvml.nvmlDeviceGetCount()
            for index in range(count):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                self._gpus.append((str(index), handle, _text(pynvml.nvmlDeviceGetName(handle))))
        except pynvml.NVMLError as exc:
            self._switch_off(f"NVML cannot list GPUs ({exc})")
            return
        if not self._gpus:
            self._switch_off("NVML found no GPU")
            return
        self.enabled = True
        log.info("GPU collector on: %s", ", ".join(f"{index}: {name}" for index, _, name in self._gpus))

    def _switch_off(self, reason: str) -> None:
        self.enabled = False
        self.reason = reason
        log.info("GPU collector off: %s", reason)
        self.close()

    def collect(self, now: float) -> SeriesList:
        series: SeriesList = []
        for index, handle, name in self._gpus:
            series += self._collect_gpu(now, index, handle, name)
        return series

    def _collect_gpu(self, now: float, index: str, handle: Any, name: str) -> SeriesList:
        nvml = self._nvml
        gpu = {"gpu": index}
        series: SeriesList = []
        util = self._read(index, "utilization", lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        if util is not None:
            series.append(
                series_dict("gpu_utilization_percent", [[now, float(util)]], {"gpu": index, "name": name})
            )
        memory = self._read(index, "memory", lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        if memory is not None:
            percent = 100.0 * memory.used / memory.total if memory.total else 0.0
            series += [
                series_dict("gpu_memory_used_bytes", [[now, float(memory.used)]], gpu),
                series_dict("gpu_memory_total_bytes", [[now, float(memory.total)]], gpu),
                series_dict("gpu_memory_usage_percent", [[now, percent]], gpu),
            ]
        temp = self._read(
            index, "temperature", lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
        )
        if temp is not None:
            series.append(series_dict("gpu_temperature_celsius", [[now, float(temp)]], gpu))
        milliwatts = self._read(index, "power", lambda: nvml.nvmlDeviceGetPowerUsage(handle))
        if milliwatts is not None:
            series.append(series_dict("gpu_power_watts", [[now, milliwatts / 1000.0]], gpu))
        return series

    def _read(self, index: str, what: str, call: Any) -> Any:
        """Return one NVML reading, or None (logged once) where this GPU does not support it."""
        try:
            return call()
        except self._nvml.NVMLError as exc:
            if (index, what) not in self._missing:
                self._missing.add((index, what))
                log.info("GPU %s: %s not available (%s); skipped", index, what, exc)
            return None

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()
            self._nvml = None
            self._gpus = []


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
