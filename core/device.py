"""Device policy: which device, which precision, how much memory a pass may use, and reading
values back from the device without stalling it. Inside ComfyUI the nodes pass ComfyUI's device;
elsewhere we pick one."""
from __future__ import annotations

import os
from collections.abc import Callable

import torch

from .errors import InputError

# The precision words, one vocabulary for every option, node input and flag ("fp32" is full
# precision; no "none", "float32" or "half"):
# - a fixed precision: the dtype weights and activations are held in (LoadVGGEncoder's dtype)
FIXED_PRECISIONS = ("fp32", "fp16", "bf16")
# - a precision: that, or "auto" (resolve_dtype picks one for the device and the pass size); the
#   stylize precision (StylizeOptions.precision, the GAN Stylize input, ``ganstyle stylize --dtype``)
PRECISIONS = ("auto", *FIXED_PRECISIONS)
# - a mixed-precision mode: autocast in training (TrainConfig.mixed_precision) and in the
#   optimiser's VGG passes (OptimizeOptions.mixed_precision); "fp32" = no autocast. No fp16:
#   its narrow range would need loss scaling, bf16's does not.
MIXED_PRECISION_MODES = ("auto", "bf16", "fp32")
DTYPE_NAMES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16,
               "float16": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
# On CUDA, fp16 pays off only for large passes (docs/benchmarks.md): "auto" keeps fp32 (TF32
# convolutions) up to this many pixels per pass and uses fp16 above.
AUTO_FP16_PIXELS = 2048 * 2048


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


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX tiles (Intel Xeon Sapphire Rapids and later), where oneDNN runs bf16
    convolutions much faster than fp32; elsewhere bf16 on a CPU is slower than fp32."""
    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device, pixels: int | None = None) -> torch.dtype:
    """``None``/``"auto"`` → on CUDA, fp16 for passes of more than ``AUTO_FP16_PIXELS`` pixels
    (batch × height × width; unknown counts as large) and fp32 (TF32) below; bf16 on CPUs with
    AMX; fp32 elsewhere. A name of :data:`DTYPE_NAMES` or a float dtype is taken as given."""
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise InputError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
        return dtype
    if dtype is None or dtype == "auto":
        if device.type == "cuda":
            return torch.float32 if pixels is not None and pixels <= AUTO_FP16_PIXELS else torch.float16
        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else torch.float32
    if dtype not in DTYPE_NAMES:
        raise InputError(f"dtype '{dtype}' is not one of {', '.join(PRECISIONS)}")
    return DTYPE_NAMES[dtype]


def memory_budget(device: torch.device) -> int:
    """Bytes of activations one forward pass may use on ``device``: 60 % of free CUDA memory
    (including PyTorch's cached blocks), or 25 % of available RAM on the CPU (capped at 8 GiB;
    beyond that tiling costs little and keeps the machine responsive). The inference engine and
    the optimiser share this one budget."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(0.6 * (free + cached))
    if device.type == "mps":
        return 2 << 30
    available = available_ram_bytes()
    return int(min(0.25 * available, 8 << 30)) if available else 2 << 30


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
