"""The engine of :func:`ganstyle.core.stylize.stylize` for feed-forward generators: one forward
pass per image (or batch of small images) under a memory budget, seamless tiles with exact
instance-norm statistics for what does not fit, and out-of-memory recovery (the tile side halves).
How tiles stay seamless: the module docstring of :mod:`ganstyle.core.stylize`.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .device import memory_budget
from .generator import StyleGenerator
from .model_copies import GRAPH_MAX_BYTES, graph_forward
from .norm_statistics import InstanceNorm2d, NormStatistics, StatisticsGathered
from .tiles import TilePlan, owned_spans, ramp, tile_spans

ProgressCallback = Callable[[int, int], None]
MIN_TILE_CORE = 64   # output pixels per tile side, at least (below this, halos dominate)


class TiledEngine:
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
            return graph_forward(self.g, x)
        return self.g(x)

    def images_per_forward(self, h: int, w: int) -> int:
        """Whole images per forward pass (1 when the image is tiled)."""
        return max(1, self.budget_px // (h * w)) if self.plan(h, w) is None else 1

    def run(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float32 in [0, 1] (for a K-style library, (B, 3 + K, H, W): the per-pixel
        style weights follow the image through batching and tiles) → stylised (B, 3, H, W) on
        ``images.device``."""
        b, _, h, w = images.shape
        if self.images_per_forward(h, w) >= b:  # the common case: one pass, no output buffer
            self.total = self.steps_for(h, w)
            try:
                return self.run_chunk(images)
            except torch.OutOfMemoryError:
                pass  # fall through to the shrinking loop below
            self.shrink(b)
        out = images.new_empty(b, 3, h, w)
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

        rows, cols = owned_spans(tile_spans(h, plan)), owned_spans(tile_spans(w, plan))
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
        b, _, h, w = images.shape
        stats = self.statistics(images, plan)
        rows, cols = tile_spans(h, plan), tile_spans(w, plan)
        out = torch.zeros(b, 3, h, w, dtype=torch.float32, device=images.device)
        weight_sum = torch.zeros(1, 1, h, w, dtype=torch.float32, device=images.device)
        for ri, (y0, y1, iy0, iy1) in enumerate(rows):
            wy = ramp(rows, ri, plan.overlap).to(images.device)
            for ci, (x0, x1, ix0, ix1) in enumerate(cols):
                wx = ramp(cols, ci, plan.overlap).to(images.device)
                with torch.inference_mode(), stats.frozen():
                    y = self.forward(images[..., iy0:iy1, ix0:ix1])
                y = y[..., y0 - iy0:y1 - iy0, x0 - ix0:x1 - ix0].to(images.device, torch.float32)
                weight = wy.view(1, 1, -1, 1) * wx.view(1, 1, 1, -1)
                out[..., y0:y1, x0:x1] += y * weight
                weight_sum[..., y0:y1, x0:x1] += weight
                self.tick()
        return out.div_(weight_sum)
