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
