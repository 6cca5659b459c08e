"""Device helpers. Inside ComfyUI the nodes pass ComfyUI's device; elsewhere we pick one."""
from __future__ import annotations

from typing import Callable

import torch


def default_device() -> torch.device:
    """CUDA if present, then Apple MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or device == "auto":
        return default_device()
    return torch.device(device)


def available_ram_bytes() -> int | None:
    """Memory the OS could give this process now (Linux MemAvailable), or None if unknown."""
    import os

    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def read_later(values: torch.Tensor) -> Callable[[], float | list[float]]:
    """A tensor → a function returning ``values.tolist()`` (a float for a 0-dim tensor).

    On CUDA the copy to (pinned) host memory is queued at once and the returned function waits only
    for that copy: work queued after this call does not delay the read, and a later CUDA-graph
    replay may overwrite ``values`` without changing what is read. Elsewhere it reads when called.
    """
    if values.device.type != "cuda":
        return values.tolist
    host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
    host.copy_(values, non_blocking=True)
    copied = torch.cuda.Event()
    copied.record()

    def read() -> float | list[float]:
        copied.synchronize()
        return host.tolist()
    return read
