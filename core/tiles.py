"""Tile geometry of the inference engine (:mod:`ganstyle.core.stylize`): how one axis of an image
is cut into overlapping tiles, and the feathered weights that blend them."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


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


def owned_spans(spans: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Tile spans (:func:`tile_spans`) → a partition of the axis: each span ends where the next one
    starts, so pooling what each tile owns counts every pixel once.

    >>> owned_spans([(0, 128, 0, 144), (84, 212, 68, 228), (172, 300, 156, 300)])
    [(0, 84, 0, 144), (84, 172, 68, 228), (172, 300, 156, 300)]
    """
    return [(s[0], spans[i + 1][0] if i + 1 < len(spans) else s[1], s[2], s[3]) for i, s in enumerate(spans)]


def ramp(spans: list[tuple[int, int, int, int]], index: int, overlap: int) -> torch.Tensor:
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
