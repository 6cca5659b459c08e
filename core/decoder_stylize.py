"""Stylising with the encoder–decoder model (:mod:`ganstyle.core.decoder`): any painting, one pass.

For each level of the model, coarse to fine: encode the current picture, fuse its features with
the painting's statistics at that layer (``strength`` blends the fused features with the photo's
own: the feature-space content/style trade-off), decode. With masks each region is whitened with
its own pixels' statistics and coloured with its own painting's, and the fused features are
blended by the regions' shares at that resolution, so soft mask edges stay soft.

Large pictures run in tiles (:func:`stylize_level_tiled`): a first pass over the tiles gathers the
photo's feature moments of the whole picture (each tile adds the part it owns), a second pass
fuses and decodes each tile with a halo wider than the encoder–decoder's receptive field; every
layer is local, so the tiled result equals the untiled one to float precision.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .errors import InputError
from .features import StyleFeatures
from .fusion import Moments, fuse, style_moments
from .tiles import TilePlan, owned_spans, tile_spans

ProgressCallback = Callable[[int, int], None]
MIN_TILE_CORE = 128


def check_style_features(spec, expected_encoder: str, levels: Sequence[str]) -> StyleFeatures:
    """Refuse what is not StyleFeatures of the model's encoder with the layers it fuses."""
    if not isinstance(spec, StyleFeatures):
        raise InputError(f"this any-style model takes a painting's style features, not {spec!r}")
    spec.check_read_by(expected_encoder, "this any-style model")
    missing = [lv for lv in levels if lv not in spec.layers]
    if missing:
        raise InputError(f"these style features lack the layers {missing} this model fuses; measure them with the "
                         f"default style layers")
    return spec


class _Regions:
    """The styles of one picture: the painting's moments per level for each region, and the share
    maps (1, R, H, W) at full resolution (None: one style everywhere)."""

    def __init__(self, styles: list[StyleFeatures], shares: torch.Tensor | None, levels: Sequence[str]):
        self.moments = [{lv: style_moments(s.grams[lv], s.means[lv]) for lv in levels} for s in styles]
        self.shares = shares

    def at(self, size: tuple[int, int], index: int = 0) -> torch.Tensor | None:
        """(1, R, h, w) shares of image ``index`` at a feature resolution (area average)."""
        if self.shares is None:
            return None
        s = self.shares[index:index + 1] if self.shares.shape[0] > 1 else self.shares
        return F.adaptive_avg_pool2d(s, size) if s.shape[-2:] != size else s


def moments_sums(features: torch.Tensor, shares: torch.Tensor | None) -> list[tuple[torch.Tensor, ...]]:
    """Per region: (weight sum, Σ w·f (C,), Σ w·f fᵀ (C, C)) of (1, C, h, w) features, float64, so
    sums from tiles add up to the whole picture's."""
    f = features[0].flatten(1).double()                                         # (C, N)
    weights = [None] if shares is None else list(shares[0].flatten(1).double())
    out = []
    for w in weights:
        fw = f if w is None else f * w
        total = torch.tensor(float(f.shape[1])) if w is None else w.sum()
        out.append((total.double(), fw.sum(1), fw @ f.T))
    return out


def add_sums(a: list[tuple[torch.Tensor, ...]], b: list[tuple[torch.Tensor, ...]]) -> list[tuple[torch.Tensor, ...]]:
    """Two :func:`moments_sums` results pooled (tiles of one picture, frames of one clip)."""
    return [tuple(x + y for x, y in zip(p, q)) for p, q in zip(a, b)]


def moments_from_sums(sums: tuple[torch.Tensor, ...]) -> Moments:
    total, first, second = sums
    if float(total) <= 0:
        raise InputError("a mask covers no pixel of the picture")
    mean = first / total
    cov = second / total - torch.outer(mean, mean)
    return Moments(mean.float(), ((cov + cov.T) / 2).float())


def fuse_regions(features: torch.Tensor, content: list[Moments], styles: list[Moments], shares: torch.Tensor | None,
                 method: str, strength: float) -> torch.Tensor:
    """(1, C, h, w) features → fused, each region with its own statistics, blended by ``shares``."""
    if shares is None:
        fused = fuse(features, content[0], styles[0], method)
    else:
        fused = sum(shares[:, r:r + 1].to(features) * fuse(features, content[r], styles[r], method)
                    for r in range(len(styles)))
    return torch.lerp(features, fused, strength) if strength < 1 else fused


class ClipMoments:
    """A clip's photo statistics: each level's feature moments pooled over its first ``frames``
    frames, then frozen, so the whitening (and with it tone and colour) does not pump from frame to
    frame — the encoder–decoder's counterpart of the GAN models' clip norm statistics."""

    def __init__(self, frames: int):
        self.frames = frames
        self.sums: dict[str, list[tuple[torch.Tensor, ...]]] = {}
        self.seen: dict[str, int] = {}

    def moments(self, level: str, sums: list[tuple[torch.Tensor, ...]]) -> list[Moments]:
        """Pool this frame's ``sums`` while the clip is still pooling; the clip's moments."""
        if self.seen.get(level, 0) < self.frames:
            pooled = self.sums.get(level)
            self.sums[level] = sums if pooled is None else add_sums(pooled, sums)
            self.seen[level] = self.seen.get(level, 0) + 1
        return [moments_from_sums(s) for s in self.sums[level]]


def stylize_level(model, x: torch.Tensor, level: str, regions: _Regions, strength: float, index: int = 0,
                  clip: ClipMoments | None = None) -> torch.Tensor:
    """One level on a whole (1, 3, H, W) picture → (1, 3, H, W) in [0, 1]."""
    feats = model.encoder(x, [level])[level]
    shares = regions.at(feats.shape[-2:], index)
    sums = moments_sums(feats, shares)
    content = clip.moments(level, sums) if clip is not None else [moments_from_sums(s) for s in sums]
    styles = [m[level] for m in regions.moments]
    fused = fuse_regions(feats.float(), content, styles, shares, model.config.fusion_at(level), strength)
    return model.decoders[level](fused.to(feats.dtype)).float().clamp(0, 1)


def stylize_level_tiled(model, x: torch.Tensor, level: str, regions: _Regions, strength: float, tile: int,
                        index: int = 0, tick: Callable[[], None] | None = None) -> torch.Tensor:
    """:func:`stylize_level` in tiles of about ``tile`` pixels, with the whole picture's moments."""
    scale = 2 ** level_pools(level)
    halo = -(-model.receptive_radius(level) // scale) * scale
    plan = TilePlan(max(tile, 2 * halo + MIN_TILE_CORE) // scale * scale, halo, 0, scale)
    h, w = x.shape[-2:]
    rows, cols = tile_spans(h, plan), tile_spans(w, plan)
    full_shares = regions.at((h // scale, w // scale), index)   # at the features' resolution, whole picture
    sums = None
    for y0, y1, iy0, iy1 in owned_spans(rows):      # pass 1: the whole picture's moments
        for x0, x1, ix0, ix1 in owned_spans(cols):
            feats = model.encoder(x[..., iy0:iy1, ix0:ix1], [level])[level]
            fy, fx = (y0 - iy0) // scale, (x0 - ix0) // scale
            part = feats[..., fy:fy + (y1 - y0) // scale, fx:fx + (x1 - x0) // scale]
            shares = None if full_shares is None else \
                full_shares[..., y0 // scale:y1 // scale, x0 // scale:x1 // scale]   # exactly these pixels'
            add = moments_sums(part, shares)
            sums = add if sums is None else add_sums(sums, add)
            if tick:
                tick()
    content = [moments_from_sums(s) for s in sums]
    styles = [m[level] for m in regions.moments]
    out = torch.empty_like(x)
    for y0, y1, iy0, iy1 in rows:             # pass 2: fuse and decode each tile
        for x0, x1, ix0, ix1 in cols:
            feats = model.encoder(x[..., iy0:iy1, ix0:ix1], [level])[level]
            shares = None if full_shares is None else \
                full_shares[..., iy0 // scale:iy1 // scale, ix0 // scale:ix1 // scale]
            fused = fuse_regions(feats.float(), content, styles, shares, model.config.fusion_at(level), strength)
            y = model.decoders[level](fused.to(feats.dtype)).float().clamp(0, 1)
            out[..., y0:y1, x0:x1] = y[..., y0 - iy0:y1 - iy0, x0 - ix0:x1 - ix0]
            if tick:
                tick()
    return out


def level_pools(level: str) -> int:
    """How many 2× poolings lie before ``level`` (relu3_1: 2)."""
    return int(level[4]) - 1


def stylize_encoder_decoder(model, images: torch.Tensor, style: StyleFeatures | None,
                            masks: Sequence[tuple[torch.Tensor, StyleFeatures]] = (), *, strength: float = 1.0,
                            tile: int | None = None, device: torch.device | None = None,
                            dtype: torch.dtype = torch.float32, progress: ProgressCallback | None = None,
                            clip: ClipMoments | None = None) -> torch.Tensor:
    """Stylise (B, 3, H, W) images in [0, 1] with painting statistics → (B, 3, H, W) float32 in [0, 1].

    style: the painting's features (the background's, with masks); masks: [(mask, features)], each
    mask (H, W)/(B, H, W)/(B, 1, H, W) in [0, 1] at any size. tile: None (whole pictures) or a tile
    side in pixels (the result is the same). The model's own device and dtype unless given.
    clip: a video's pooled statistics (:class:`ClipMoments`; frames then go in one at a time, untiled)."""
    from .style_choice import region_shares

    specs = [spec for _, spec in masks] + ([] if style is None else [style])
    if not specs:
        raise InputError("an any-style model needs a painting's style features")
    levels = model.config.levels
    specs = [check_style_features(s, model.config.style_encoder, levels) for s in specs]
    b, _, h, w = images.shape
    align = 2 ** max(level_pools(lv) for lv in levels)
    if min(h, w) < align:
        raise InputError(f"images must be at least {align} pixels on each side for this model, got {h}×{w}")
    shares = None
    if masks:   # at the padded size (padding repeats the edge's shares), so every level sees whole pools
        shares = region_shares((h, w), b, style is not None, [m for m, _ in masks])
        shares = F.pad(shares, (0, (-w) % align, 0, (-h) % align), mode="replicate")
    regions = _Regions(specs, shares, levels)
    from .model_copies import prepare_model

    run_device = device or next(model.parameters()).device
    run = prepare_model(model, run_device, dtype)
    total = b * len(levels) * (1 if tile is None else _tile_count(h, w, tile) * 2)
    done = [0]

    def tick():
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    out = torch.empty(b, 3, h, w, dtype=torch.float32, device=images.device)
    with torch.inference_mode():
        for i in range(b):
            x = images[i:i + 1].to(run_device, dtype)
            pad = _pad_to(x, align)
            for level in levels:
                if tile is None or max(h, w) <= tile or clip is not None:
                    x = stylize_level(run, pad(x), level, regions, strength, i, clip)[..., :h, :w].to(dtype)
                    tick()
                else:
                    x = stylize_level_tiled(run, pad(x), level, regions, strength, tile, i, tick)[..., :h, :w]
                    x = x.to(dtype)
            out[i] = x[0].float().to(images.device)
    return out


def _pad_to(x: torch.Tensor, align: int):
    """A function padding (reflect) a picture of x's size to a multiple of ``align``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % align, (-w) % align
    if not ph and not pw:
        return lambda t: t
    return lambda t: F.pad(t, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")


def _tile_count(h: int, w: int, tile: int) -> int:
    return max(1, math.ceil(h / tile)) * max(1, math.ceil(w / tile))

