"""Loss tiling: the VGG part of the loss over tiles when one pass over the image would not fit
the memory budget.

Tiles overlap by the encoder's receptive-field radius and start on multiples of its total
stride, so each tile's *core* computes exactly the features the whole image would there: the
tiled loss and gradient equal the untiled ones up to float rounding
(:meth:`~ganstyle.core.optimize.objective.StyleObjective` sums Gram matrices over the cores).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..device import memory_budget
from ..vgg import VGGEncoder

# Safety factor on the per-pixel estimate of activation memory (allocator slack, temporaries).
_ESTIMATE_SAFETY = 1.3


@dataclass(frozen=True)
class Tile:
    """A core region [y0, y1) × [x0, x1) of the image (multiples of the total stride), and the crop
    around it (the core plus a halo of at least the receptive-field radius, clipped at the image
    border) that the encoder runs on."""
    y0: int
    y1: int
    x0: int
    x1: int
    crop_y0: int
    crop_y1: int
    crop_x0: int
    crop_x1: int
    strides: tuple  # ((layer, stride), ...)

    def stride(self, layer: str) -> int:
        return dict(self.strides)[layer]

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.crop_y0:self.crop_y1, self.crop_x0:self.crop_x1]

    def core(self, layer: str, feats: torch.Tensor):
        """The core's part of the crop's feature map, and where it sits in the whole-image map."""
        s = self.stride(layer)
        fy0, fy1 = self.y0 // s, self.y1 // s
        fx0, fx1 = self.x0 // s, self.x1 // s
        oy, ox = self.crop_y0 // s, self.crop_x0 // s
        return feats[..., fy0 - oy:fy1 - oy, fx0 - ox:fx1 - ox], (fy0, fy1, fx0, fx1)


def receptive_field(encoder: VGGEncoder, layers) -> tuple[int, int]:
    """(radius in px, total stride) of the deepest of ``layers``: a feature depends only on input
    pixels within ``radius`` of its centre."""
    wanted = set(layers)
    radius, stride = 0.0, 1
    found = set()
    for layer in encoder.layers:
        if layer.kind == "conv":
            radius += stride            # 3×3, padding 1
        elif layer.kind == "pool":
            radius += stride / 2        # 2×2, stride 2
            stride *= 2
        found.add(layer.name)
        if wanted <= found:
            break
    return math.ceil(radius), stride


def layer_strides(encoder: VGGEncoder) -> dict[str, int]:
    strides, s = {}, 1
    for layer in encoder.layers:
        if layer.kind == "pool":
            s *= 2
        strides[layer.name] = s
    return strides


def activation_bytes_per_pixel(encoder: VGGEncoder, layers, dtype: torch.dtype | None = None) -> float:
    """Estimated memory of one forward+backward pass per input pixel: every activation up to the
    deepest layer is kept for the backward pass (conv outputs, ReLU outputs, pooling indices)."""
    deepest_index = max(encoder.layer_names.index(n) for n in layers)
    size = torch.finfo(dtype or encoder.dtype).bits // 8
    per_pixel, s = 3 * 4.0, 1
    for layer in encoder.layers[:deepest_index + 1]:
        if layer.kind == "pool":
            per_pixel += layer.out_channels / (2 * s) ** 2 * 8   # int64 indices
            s *= 2
        per_pixel += layer.out_channels / s ** 2 * size
    return per_pixel * _ESTIMATE_SAFETY


def plan_tiles(encoder, height, width, layers, tile_size, autocast_dtype) -> list[Tile] | None:
    """None (one pass over the whole image) or the tiles covering it."""
    radius, total_stride = receptive_field(encoder, layers)
    if tile_size == 0:
        budget = memory_budget(encoder.device)
        per_pixel = activation_bytes_per_pixel(encoder, layers, autocast_dtype)
        if height * width * per_pixel <= budget:
            return None
        # Largest square core whose crop (core + 2 halos) fits the budget.
        halo = math.ceil(radius / total_stride) * total_stride
        crop_side = int(math.sqrt(budget / per_pixel))
        tile_size = max(total_stride, crop_side - 2 * halo)
    elif height <= tile_size and width <= tile_size:
        return None
    core = max(total_stride, tile_size // total_stride * total_stride)
    halo = math.ceil(radius / total_stride) * total_stride
    strides = tuple(layer_strides(encoder).items())
    tiles = []
    for y0 in range(0, height, core):
        for x0 in range(0, width, core):
            y1, x1 = min(height, y0 + core), min(width, x0 + core)
            tiles.append(Tile(y0, y1, x0, x1, max(0, y0 - halo), min(height, y1 + halo),
                               max(0, x0 - halo), min(width, x1 + halo), strides))
    return tiles
