"""The inference engine: a trained style model over a batch of images of any size.

:func:`stylize` runs one forward pass of a :class:`~ganstyle.core.generator.StyleGenerator` per
image (or per batch of small images), on any device and in fp32/fp16/bf16, then blends with the
input (``strength``) and optionally keeps the input's colours (``color_mode``).

Images too large for the memory budget are processed in tiles, and tiles must not show seams.
Instance norm is the obstacle: it normalises with statistics of whatever it sees, so a naive tile
is normalised differently from its neighbours. The engine therefore runs in two passes:

1. **statistics**: the network runs once on the whole image with
   :class:`~ganstyle.core.generator.NormStatistics` recording every norm layer's per-channel
   mean/variance. When the whole image does not fit the memory budget, the statistics are
   gathered over the tiles instead, one norm layer per round (each round runs every tile up to
   the first layer still without statistics, the earlier ones frozen at their exact values, and
   pools the mean/variance of the part each tile owns): exact, at the cost of one partial pass
   over the tiles per norm layer. ``tile_statistics="thumbnail"`` takes them in one pass over a
   downscaled copy instead ("thumbnail instance normalisation", Chen et al. 2022): faster, but
   measured far off for pixel-shuffle models (a half-size thumbnail moved 1024² outputs by 0.25
   on average, on a 0–1 scale);
2. **tiles**: each tile runs with those statistics frozen. Every layer is then local, so a tile
   with a margin (halo) wider than the network's receptive field computes its centre exactly as
   the whole image would. Neighbouring tiles overlap by ``overlap`` pixels and are blended with
   feathered (linear ramp) weights, which hides the last floating-point differences.

With exact statistics, tiled output equals untiled output to float precision.

Memory: the budget (``max_memory`` bytes, default: a fraction of free device memory) decides how
many images run at once, whether to tile, and the tile size. On ``torch.OutOfMemoryError`` the
tile side is halved and the work retried, down to a minimum tile.

No state lives in the model: the statistics travel in a context variable and a device/dtype copy
of the model is made when needed, so concurrent calls with one model are safe.
"""
from __future__ import annotations

import copy
import math
import os
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Union

import torch
import torch.nn.functional as F

from .color import COLOR_MODES, apply_color_mode
from .device import available_ram_bytes, resolve_device
from .errors import InputError
from .generator import InstanceNorm2d, NormStatistics, StatisticsGathered, StyleGenerator

ProgressCallback = Callable[[int, int], None]
TileOption = Union[None, str, int]

DTYPE_NAMES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16,
               "float16": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
DEFAULT_OVERLAP = 32
MIN_TILE_CORE = 64   # output pixels per tile side, at least (below this, halos dominate)


# On CUDA, fp16 pays off only for large passes: measured on an H200 with the fast preset, fp32
# (TF32 convolutions) beat fp16 for single images up to 2048² (2.3 vs 2.7 ms at 1024², 6.9 vs
# 9.1 ms at 2048²), while fp16 won for 8 × 1024² (1.30 vs 1.43 ms/image) and halves memory.
AUTO_FP16_PIXELS = 2048 * 2048


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX tiles (Intel Xeon Sapphire Rapids and later), where oneDNN runs bf16
    convolutions ~2.7x faster than fp32 (fast preset, 1024², one core: 382 vs 1027 ms)."""
    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device, pixels: int | None = None) -> torch.dtype:
    """``None``/``"auto"`` → on CUDA, fp16 for passes of more than ``AUTO_FP16_PIXELS`` pixels
    (batch × height × width; unknown counts as large) and fp32 (TF32) below; bf16 on CPUs with
    AMX; fp32 elsewhere.

    Precision cost, measured with a trained fast-preset model on a 1920×1200 photo: bf16 moves
    pixels by 0.002 on average (half an 8-bit level), 0.015 at the 99.9th percentile, 0.036 at
    most; fp16 on CUDA by at most 0.003."""
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise InputError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
        return dtype
    if dtype is None or dtype == "auto":
        if device.type == "cuda":
            return torch.float32 if pixels is not None and pixels <= AUTO_FP16_PIXELS else torch.float16
        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else torch.float32
    if dtype not in DTYPE_NAMES:
        raise InputError(f"dtype '{dtype}' is not one of auto, fp32, fp16, bf16")
    return DTYPE_NAMES[dtype]


def memory_budget(device: torch.device) -> int:
    """Bytes of activations one forward pass may use on ``device``: 60 % of free CUDA memory
    (including PyTorch's cached blocks), or 25 % of available RAM on the CPU (capped at 8 GiB;
    beyond that tiling costs little and keeps the machine responsive)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(0.6 * (free + cached))
    if device.type == "mps":
        return 2 << 30
    available = available_ram_bytes()
    return int(min(0.25 * available, 8 << 30)) if available else 2 << 30


TILE_STATISTICS = ("exact", "thumbnail")


@dataclass
class TilePlan:
    """How one image is cut: ``tile`` input pixels per side per forward pass, of which ``halo``
    on each inner side only feed the receptive field, and ``overlap`` pixels are blended."""
    tile: int
    halo: int
    overlap: int
    align: int

    @property
    def core(self) -> int:
        return self.tile - 2 * self.halo


def tile_spans(length: int, plan: TilePlan) -> list[tuple[int, int, int, int]]:
    """Cut one axis of ``length`` pixels into ``(out_start, out_end, in_start, in_end)`` spans.

    Output spans cover the axis, consecutive ones overlap by at least ``plan.overlap``; input
    spans add ``plan.halo`` on inner sides; starts are multiples of ``plan.align`` (the network's
    stride) so the tiles' downsampling grids coincide with the whole image's.

    >>> tile_spans(100, TilePlan(tile=256, halo=16, overlap=8, align=4))
    [(0, 100, 0, 100)]
    >>> [s[:2] for s in tile_spans(300, TilePlan(tile=160, halo=16, overlap=8, align=4))]
    [(0, 128), (84, 212), (172, 300)]
    """
    if length <= plan.tile:
        return [(0, length, 0, length)]
    core, align = plan.core, plan.align
    step = max(align, core - plan.overlap - align)
    count = math.ceil((length - core) / step) + 1
    starts = sorted({(i * (length - core) // (count - 1)) // align * align for i in range(count)})
    spans = []
    for i, start in enumerate(starts):
        end = length if i == len(starts) - 1 else min(length, start + core)
        spans.append((start, end, max(0, start - plan.halo), min(length, end + plan.halo)))
    return spans


def _ramp(spans: list[tuple[int, int, int, int]], index: int, overlap: int) -> torch.Tensor:
    """1-D blending weights for span ``index``: linear ramps where it overlaps its neighbours."""
    start, end = spans[index][:2]
    w = torch.ones(end - start)
    if index > 0:
        width = min(overlap, spans[index - 1][1] - start)
        if width > 0:
            w[:width] = torch.minimum(w[:width], torch.arange(1, width + 1) / (width + 1))
    if index < len(spans) - 1:
        width = min(overlap, end - spans[index + 1][0])
        if width > 0:
            w[end - start - width:] = torch.minimum(w[end - start - width:],
                                                    torch.arange(width, 0, -1) / (width + 1))
    return w


_prepared: "weakref.WeakKeyDictionary[StyleGenerator, dict]" = weakref.WeakKeyDictionary()
_prepared_lock = threading.Lock()


def prepare_model(model, device: torch.device, dtype: torch.dtype,
                  channels_last: bool = False) -> StyleGenerator:
    """The generator ready for inference on ``device``/``dtype``: ``model`` itself when it already
    is, otherwise a converted copy (the caller's model is never modified). Copies are remembered
    per model until its weights change (tracked by the tensors' in-place version counters), so
    repeated calls do not pay for the conversion."""
    generator = getattr(model, "generator", model)
    if not isinstance(generator, StyleGenerator):
        raise InputError(f"expected a style model (StyleGenerator), got {type(model).__name__}")
    p = next(generator.parameters())
    conv = generator.head[1].weight
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if p.device == device and p.dtype == dtype and not generator.training and conv.is_contiguous(memory_format=fmt):
        return generator
    key = (str(device), dtype, channels_last)
    # inference tensors (a model loaded inside ComfyUI's inference mode) have no version counter
    version = tuple((t.data_ptr(), 0 if t.is_inference() else t._version) for t in generator.state_dict().values())
    with _prepared_lock:
        cached = _prepared.get(generator, {}).get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    with torch.inference_mode():  # the copy is only ever used for inference
        copied = copy.deepcopy(generator) if p.device.type == "cpu" else _copy_via_cpu(generator)
        copied = copied.to(device=device, dtype=dtype, memory_format=fmt).eval().requires_grad_(False)
    with _prepared_lock:
        _prepared.setdefault(generator, {})[key] = (version, copied)
    return copied


def release_device_copies(model) -> int:
    """Forget the converted copies (and their CUDA graphs) that :func:`stylize` keeps for
    ``model``, freeing their device memory; returns how many were dropped. ComfyUI's node calls
    this after each run, so nothing stays on the GPU between runs (the offload device keeps the
    weights)."""
    generator = getattr(model, "generator", model)
    if not isinstance(generator, StyleGenerator):
        return 0  # not a model (a bad input already reported by stylize); nothing was copied
    with _prepared_lock:
        copies = _prepared.pop(generator, {})
    with _graph_lock:
        for _, copied in copies.values():
            _graphs.pop(copied, None)
        _graphs.pop(generator, None)
    return len(copies)


def _copy_via_cpu(generator: StyleGenerator) -> StyleGenerator:
    clone = StyleGenerator(generator.config)
    clone.load_state_dict({k: v.detach().to("cpu") for k, v in generator.state_dict().items()}, strict=True)
    return clone


# ---- CUDA graphs -------------------------------------------------------------------------------
# A small network at batch 1 is bound by kernel launches on a big GPU (the fast preset runs ~120
# small kernels). Replaying a captured CUDA graph removes that overhead. A graph is captured the
# second time an input shape is seen (one-off sizes never pay for a capture), for whole-image
# passes needing at most GRAPH_MAX_BYTES of activations (each graph keeps that memory), and at most
# GRAPHS_PER_MODEL are kept per model. Measured on an H200, fast preset, 1024², batch 1: 4.1 ms
# eager → 3.2 ms replayed (fp16), 2.3 ms (fp32).
GRAPH_MAX_BYTES = 512 << 20
GRAPHS_PER_MODEL = 3
_graphs: "weakref.WeakKeyDictionary[StyleGenerator, OrderedDict]" = weakref.WeakKeyDictionary()
_graph_lock = threading.Lock()


class _CapturedForward:
    """``model(x)`` for one input shape, captured once and replayed (under a lock: the input and
    output buffers are shared)."""

    def __init__(self, model: StyleGenerator, example: torch.Tensor):
        self.static_input = example.clone()
        side = torch.cuda.Stream(example.device)
        side.wait_stream(torch.cuda.current_stream(example.device))
        with torch.cuda.stream(side):  # warm up (cuDNN algorithm choice, allocator) off the main stream
            for _ in range(2):
                model(self.static_input)
        torch.cuda.current_stream(example.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_output = model(self.static_input)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.static_input.copy_(x)
        self.graph.replay()
        return self.static_output.clone()


def _graph_forward(model: StyleGenerator, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` through a CUDA graph when worthwhile (see above), else eagerly."""
    weights = tuple(p.data_ptr() for p in model.parameters())  # a graph reads these addresses
    key = (tuple(x.shape), x.dtype, x.is_contiguous(memory_format=torch.channels_last), weights)
    with _graph_lock:
        entries = _graphs.setdefault(model, OrderedDict())
        entry = entries.get(key)
        if isinstance(entry, _CapturedForward):
            entries.move_to_end(key)
            return entry(x)
        if entry is None or entry == "failed":
            entries.setdefault(key, "seen")
            return model(x)
        try:
            captured = _CapturedForward(model, x)
        except RuntimeError:  # capture unsupported here: stay eager for this shape
            entries[key] = "failed"
            return model(x)
        entries[key] = captured
        for old in [k for k, v in entries.items() if isinstance(v, _CapturedForward)][:-GRAPHS_PER_MODEL]:
            del entries[old]
        return captured(x)


class _Engine:
    """One :func:`stylize` call: settings, the memory budget (which shrinks on OOM) and progress."""

    def __init__(self, generator: StyleGenerator, device, dtype, channels_last, tile, overlap,
                 max_memory, progress, cuda_graphs=True, tile_statistics="exact"):
        self.g, self.device, self.dtype = generator, device, dtype
        self.tile_statistics = tile_statistics
        self.norm_layers = sum(isinstance(m, InstanceNorm2d) for m in generator.modules())
        self.cuda_graphs = cuda_graphs and device.type == "cuda"
        self.fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.tile_option, self.overlap, self.progress = tile, overlap, progress
        self.bytes_per_pixel = generator.activation_bytes_per_pixel(dtype)
        budget = max_memory if max_memory is not None else memory_budget(device)
        self.budget_px = max(1, int(budget) // self.bytes_per_pixel)
        self.align = generator.config.stride
        radius = generator.receptive_radius() + self.align  # + the stride padding at window edges
        self.halo = -(-radius // self.align) * self.align
        self.min_tile = 2 * self.halo + MIN_TILE_CORE
        self.done = 0
        self.total = 0
        self.last_forward_px = 0

    # -- planning ---------------------------------------------------------------------------------
    def plan(self, h: int, w: int) -> TilePlan | None:
        """How to cut an (h, w) image under the current budget, or None to run it whole."""
        fits = h * w <= self.budget_px
        if self.tile_option is None:
            return None
        if self.tile_option == "auto":
            if fits:
                return None
            side = int(math.sqrt(self.budget_px))
        else:
            side = min(int(self.tile_option), int(math.sqrt(self.budget_px)))
            if max(h, w) <= side and fits:
                return None
        side = max(self.min_tile, side // self.align * self.align)
        overlap = min(self.overlap, (side - 2 * self.halo) // 4)
        return TilePlan(side, self.halo, overlap, self.align)

    def steps_for(self, h: int, w: int) -> int:
        """Forward passes for one (h, w) image: 1, or the tiles plus the statistics pass(es)."""
        plan = self.plan(h, w)
        if plan is None:
            return 1
        tiles = len(tile_spans(h, plan)) * len(tile_spans(w, plan))
        return tiles + (tiles * self.norm_layers if self.gathers_statistics(h, w) else 1)

    def gathers_statistics(self, h: int, w: int) -> bool:
        """Whether norm statistics of an (h, w) image are gathered tile by tile (see statistics)."""
        return h * w > self.budget_px and self.tile_statistics == "exact" and self.norm_layers > 0

    def tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)

    # -- running ----------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, whole: bool = False) -> torch.Tensor:
        """One pass; ``whole``: a plain whole-image pass (no norm statistics), which may replay a
        CUDA graph."""
        self.last_forward_px = x.shape[0] * x.shape[-2] * x.shape[-1]
        x = x.to(device=self.device, dtype=self.dtype, memory_format=self.fmt)
        if whole and self.cuda_graphs and self.last_forward_px * self.bytes_per_pixel <= GRAPH_MAX_BYTES:
            return _graph_forward(self.g, x)
        return self.g(x)

    def images_per_forward(self, h: int, w: int) -> int:
        """Whole images per forward pass (1 when the image is tiled)."""
        return max(1, self.budget_px // (h * w)) if self.plan(h, w) is None else 1

    def run(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float32 in [0, 1] → stylised, same shape, on ``images.device``."""
        b, _, h, w = images.shape
        if self.images_per_forward(h, w) >= b:  # the common case: one pass, no output buffer
            self.total = self.steps_for(h, w)
            try:
                return self.run_chunk(images)
            except torch.OutOfMemoryError:
                pass  # fall through to the shrinking loop below
            self.shrink(b)
        out = torch.empty_like(images)
        i = 0
        while i < b:
            n = min(b - i, self.images_per_forward(h, w))
            # remaining work under the current plan (it changes when an OOM shrinks the budget)
            self.total = self.done + -(-(b - i) // n) * self.steps_for(h, w)
            try:
                out[i:i + n] = self.run_chunk(images[i:i + n])
            except torch.OutOfMemoryError:
                out_of_memory = True  # handled below, once the failed pass's tensors are released
            else:
                out_of_memory = False
                i += n
            if out_of_memory:
                self.shrink(n)
        return out

    def shrink(self, images_in_chunk: int) -> None:
        """After an out-of-memory error: a quarter of the pixels per forward pass (tile side
        halved), or re-raise when that is impossible (tiling off, or already the minimum tile)."""
        tried = self.last_forward_px
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if images_in_chunk == 1 and (self.tile_option is None or tried <= self.min_tile ** 2):
            raise torch.OutOfMemoryError(
                f"ganstyle: out of memory on {self.device} running {tried} pixels at once "
                f"(about {self.bytes_per_pixel} bytes per pixel in {self.dtype}, tiling "
                f"{'off' if self.tile_option is None else 'at its minimum'}); use tiling, a smaller "
                f"image, fp16, or another device")
        self.budget_px = max(1, min(self.budget_px, tried) // 4)

    def run_chunk(self, images: torch.Tensor) -> torch.Tensor:
        plan = self.plan(*images.shape[-2:])
        if plan is None:
            with torch.inference_mode():
                result = self.forward(images, whole=True).to(images.device, torch.float32)
            self.tick()
            return result
        return self.run_tiled(images, plan)

    def statistics(self, images: torch.Tensor, plan: TilePlan) -> NormStatistics:
        """Pass 1: norm statistics of the whole image. When it does not fit the budget: gathered
        exactly over the tiles (``tile_statistics="exact"``), or from the largest downscaled copy
        that fits (``"thumbnail"``: one pass, approximate)."""
        h, w = images.shape[-2:]
        if self.gathers_statistics(h, w):
            return self.gathered_statistics(images, plan)
        stats = NormStatistics()
        source = images
        if h * w > self.budget_px:
            scale = math.sqrt(self.budget_px / (h * w))
            size = (max(self.align, int(h * scale)), max(self.align, int(w * scale)))
            source = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
        with torch.inference_mode(), stats.record():
            self.forward(source)
        self.tick()
        return stats

    def gathered_statistics(self, images: torch.Tensor, plan: TilePlan) -> NormStatistics:
        """Exact whole-image statistics from tiles, one norm layer per round: every tile runs up to
        the first layer without statistics (earlier ones frozen at their exact values, so the
        tile's centre equals the whole image's there) and adds the mean/variance of the part it
        owns. Costs one partial pass over the tiles per norm layer."""
        h, w = images.shape[-2:]
        stats = NormStatistics()

        def owned(spans):   # (start, end, in_start, in_end): a partition of the axis
            return [(s[0], spans[i + 1][0] if i + 1 < len(spans) else s[1], s[2], s[3])
                    for i, s in enumerate(spans)]

        rows, cols = owned(tile_spans(h, plan)), owned(tile_spans(w, plan))
        for _ in range(self.norm_layers):
            for y0, y1, iy0, iy1 in rows:
                for x0, x1, ix0, ix1 in cols:
                    region = (y0 - iy0, y1 - iy0, x0 - ix0, x1 - ix0)
                    with torch.inference_mode(), stats.gathering(region, (iy1 - iy0, ix1 - ix0), self.align):
                        try:
                            self.forward(images[..., iy0:iy1, ix0:ix1])
                        except StatisticsGathered:
                            pass
                    self.tick()
            if not stats.finish_layer():
                break
        return stats

    def run_tiled(self, images: torch.Tensor, plan: TilePlan) -> torch.Tensor:
        b, c, h, w = images.shape
        stats = self.statistics(images, plan)
        rows, cols = tile_spans(h, plan), tile_spans(w, plan)
        out = torch.zeros(b, c, h, w, dtype=torch.float32, device=images.device)
        weight_sum = torch.zeros(1, 1, h, w, dtype=torch.float32, device=images.device)
        for ri, (y0, y1, iy0, iy1) in enumerate(rows):
            wy = _ramp(rows, ri, plan.overlap).to(images.device)
            for ci, (x0, x1, ix0, ix1) in enumerate(cols):
                wx = _ramp(cols, ci, plan.overlap).to(images.device)
                with torch.inference_mode(), stats.frozen():
                    y = self.forward(images[..., iy0:iy1, ix0:ix1])
                y = y[..., y0 - iy0:y1 - iy0, x0 - ix0:x1 - ix0].to(images.device, torch.float32)
                weight = wy.view(1, 1, -1, 1) * wx.view(1, 1, 1, -1)
                out[..., y0:y1, x0:x1] += y * weight
                weight_sum[..., y0:y1, x0:x1] += weight
                self.tick()
        return out.div_(weight_sum)


def stylize(model, images: torch.Tensor, strength: float = 1.0, color_mode: str = "none", *,
            tile: TileOption = "auto", overlap: int = DEFAULT_OVERLAP,
            device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
            channels_last: bool | None = None, max_memory: int | None = None,
            progress: ProgressCallback | None = None, cuda_graphs: bool = True,
            tile_statistics: str = "exact") -> torch.Tensor:
    """Stylise ``images`` with a style ``model``.

    Args:
        model: a :class:`StyleGenerator` or a loaded style model (``core.models.StyleModel``).
        images: (B, 3, H, W) float in [0, 1], any H and W.
        strength: 0..1; the output is ``strength · stylised + (1 − strength) · images``
            (0 returns the input unchanged, without running the network).
        color_mode: ``"none"``, ``"luminance"`` (keep the input's colours, take the style's
            light/dark structure) or ``"histogram"`` (match the input's colour statistics).
        tile: ``"auto"`` (tile only what does not fit the memory budget), ``None`` (never tile),
            or a tile side in pixels (raised to at least twice the receptive-field halo + 64).
        overlap: pixels by which neighbouring tiles overlap and are feather-blended.
        device: where the network runs (default: the model's device; ``"auto"``: CUDA > MPS > CPU).
        dtype: ``"auto"`` (on CUDA: fp16 for batches over 2048² pixels, else fp32 with TF32
            convolutions; bf16 on CPUs with AMX; else fp32), ``"fp32"``, ``"fp16"``, ``"bf16"``
            or a torch dtype (see :func:`resolve_dtype`).
        channels_last: NHWC convolutions (default off: measured slower for these networks).
        max_memory: activation bytes one forward pass may use (default: from free device memory).
        progress: ``progress(done, total)`` after every forward pass; may raise to cancel.
        cuda_graphs: on CUDA, replay captured graphs for repeated whole-image shapes.
        tile_statistics: for images larger than the memory budget, how instance-norm statistics
            are found: ``"exact"`` (gathered over the tiles, one partial pass per norm layer: the
            result equals the untiled one) or ``"thumbnail"`` (one pass over a downscaled copy:
            faster, approximate).

    Returns:
        (B, 3, H, W) float32 in [0, 1] on ``images.device``.
    """
    _check_images(images)
    if not isinstance(strength, (int, float)) or not 0.0 <= float(strength) <= 1.0:
        raise InputError(f"strength must be a number in [0, 1], got {strength!r}")
    if color_mode not in COLOR_MODES:
        raise InputError(f"color_mode '{color_mode}' is not one of {list(COLOR_MODES)}")
    if not (tile is None or tile == "auto" or (isinstance(tile, int) and not isinstance(tile, bool) and tile > 0)):
        raise InputError(f"tile must be 'auto', None or a positive number of pixels, got {tile!r}")
    if tile_statistics not in TILE_STATISTICS:
        raise InputError(f"tile_statistics must be one of {list(TILE_STATISTICS)}, got {tile_statistics!r}")
    if not isinstance(overlap, int) or overlap < 0:
        raise InputError(f"overlap must be a non-negative number of pixels, got {overlap!r}")
    images = images.float().clamp(0, 1)
    if float(strength) == 0.0:
        return images.clone()

    generator = getattr(model, "generator", model)
    if not isinstance(generator, StyleGenerator):
        raise InputError(f"expected a style model (StyleGenerator), got {type(model).__name__}")
    run_device = resolve_device(device) if device is not None else next(generator.parameters()).device
    run_dtype = resolve_dtype(dtype, run_device, images.shape[0] * images.shape[2] * images.shape[3])
    if channels_last is None:
        # NCHW measured faster than NHWC on an H200 for these small-channel networks (fp16 1024²:
        # 2.7 vs 3.1 ms at batch 1, 1.30 vs 1.74 ms/image at batch 8) and on CPUs.
        channels_last = False
    runner = prepare_model(generator, run_device, run_dtype, channels_last)
    engine = _Engine(runner, run_device, run_dtype, channels_last, tile, overlap, max_memory, progress,
                     cuda_graphs, tile_statistics)
    stylised = engine.run(images)  # in [0, 1]: a sigmoid, or a convex blend of tiles
    if color_mode != "none":
        stylised = apply_color_mode(stylised, images, color_mode).clamp_(0, 1)
    if float(strength) < 1.0:
        stylised = torch.lerp(images, stylised, float(strength))
    return stylised


def _check_images(images) -> None:
    if not isinstance(images, torch.Tensor):
        raise InputError(f"images must be a tensor shaped (B, 3, H, W), got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise InputError(f"images must be shaped (B, 3, H, W), got {tuple(images.shape)}")
    if images.numel() == 0:
        raise InputError(f"images are empty (shape {tuple(images.shape)})")
    if not images.is_floating_point():
        raise InputError(f"images must be floating point in [0, 1], got {images.dtype}")
    if not torch.isfinite(images).all():
        raise InputError("images contain NaN or Inf values")
