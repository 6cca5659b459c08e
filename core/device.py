"""Device helpers. Inside ComfyUI the nodes pass ComfyUI's device; elsewhere we pick one."""
from __future__ import annotations

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
