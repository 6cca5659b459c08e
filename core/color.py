"""Colour preservation: keep the content's colours while taking the style's texture.

Two methods (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer"):

- ``"luminance"``: keep the stylised image's luminance (Y), take chroma (U, V) from the content;
- ``"histogram"``: match the stylised image's per-channel mean/std (in YUV) to the content's.
All functions take and return (B, 3, H, W) RGB in [0, 1].

:func:`recolor` goes the other way: it gives an image a palette's RGB mean and covariance (the
optimiser's ``init="content_colored"``); :func:`match_palette` does that for a stylised image
and the painting(s) it was given (``stylize(palette=…)``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import InputError

COLOR_MODES = ("none", "luminance", "histogram")

# BT.601 RGB → YUV (Y in [0, 1], U/V centred on 0)
_RGB2YUV = torch.tensor([[0.299, 0.587, 0.114],
                         [-0.14713, -0.28886, 0.436],
                         [0.615, -0.51499, -0.10001]])
_YUV2RGB = torch.linalg.inv(_RGB2YUV)


def rgb_to_yuv(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB → YUV, same shape.

    >>> y = rgb_to_yuv(torch.ones(1, 3, 2, 2))
    >>> round(float(y[0, 0, 0, 0]), 4), round(float(y[0, 1, 0, 0]), 4)
    (1.0, 0.0)
    """
    _check(images)
    m = _RGB2YUV.to(images.device, images.dtype)
    return torch.einsum("ij,bjhw->bihw", m, images)


def yuv_to_rgb(images: torch.Tensor) -> torch.Tensor:
    _check(images)
    m = _YUV2RGB.to(images.device, images.dtype)
    return torch.einsum("ij,bjhw->bihw", m, images)


def _check(images: torch.Tensor) -> None:
    if images.dim() != 4 or images.shape[1] != 3:
        raise InputError(f"expected RGB images shaped (B, 3, H, W), got {tuple(images.shape)}")


def _match_size(content: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if content.shape[-2:] != like.shape[-2:]:
        content = F.interpolate(content, size=like.shape[-2:], mode="bilinear", align_corners=False,
                                antialias=True)
    return content


def preserve_luminance(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Y from ``stylized``, U/V from ``content`` (resized to match when needed)."""
    content = _match_size(content, stylized)
    s, c = rgb_to_yuv(stylized), rgb_to_yuv(content)
    return yuv_to_rgb(torch.cat([s[:, :1], c[:, 1:]], dim=1)).clamp(0, 1)


def match_color_stats(stylized: torch.Tensor, content: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Shift/scale each YUV channel of ``stylized`` to the content's mean and std."""
    content = _match_size(content, stylized)
    s, c = rgb_to_yuv(stylized), rgb_to_yuv(content)
    s_mean, s_std = s.mean((2, 3), keepdim=True), s.std((2, 3), keepdim=True)
    c_mean, c_std = c.mean((2, 3), keepdim=True), c.std((2, 3), keepdim=True)
    return yuv_to_rgb((s - s_mean) / (s_std + eps) * c_std + c_mean).clamp(0, 1)


def apply_color_mode(stylized: torch.Tensor, content: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "none":
        return stylized
    if mode == "luminance":
        return preserve_luminance(stylized, content)
    if mode == "histogram":
        return match_color_stats(stylized, content)
    raise InputError(f"colour mode must be one of {COLOR_MODES}, got '{mode}'")


def recolor(images: torch.Tensor, target_mean: torch.Tensor, target_cov: torch.Tensor,
            eps: float = 1e-5) -> torch.Tensor:
    """Give ``images`` (B, 3, H, W) in [0, 1] the RGB mean (3,) and covariance (3, 3) of a palette.

    The linear map x ↦ A (x − μ) + μ_target with A = Σ_target^½ Σ^−½ (symmetric square roots),
    as in Gatys et al., "Preserving Color in Neural Artistic Style Transfer" (2016)."""
    return apply_color_map(images, *palette_map(images, target_mean, target_cov, eps=eps)).clamp(0, 1)


def palette_map(images: torch.Tensor, target_mean: torch.Tensor, target_cov: torch.Tensor,
                weights: torch.Tensor | None = None, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """The affine colour map x ↦ A x + b, per image, that gives the pixels of ``images`` (B, 3, H, W)
    (weighted by ``weights`` (B, H, W), e.g. a region's share; None: all alike) the RGB mean (3,) and
    covariance (3, 3) of a palette: A = Σ_target^½ Σ^−½ as in :func:`recolor`. Returns A (B, 3, 3)
    and b (B, 3), float32; an image whose weights are all 0 gets the identity."""
    x = images.flatten(2).float()                                          # (B, 3, P)
    if weights is None:
        w = torch.full((x.shape[0], x.shape[2]), 1.0 / x.shape[2], device=x.device)
    else:
        w = weights.flatten(1).float().to(x.device)
    total = w.sum(1, keepdim=True)
    w = w / total.clamp(min=1e-12)
    mean = torch.einsum("bcp,bp->bc", x, w)
    centred = x - mean[..., None]
    cov = torch.einsum("bcp,bdp,bp->bcd", centred, centred, w)
    a, b = map_between(mean, cov, target_mean, target_cov, eps)
    empty = (total[:, 0] <= 1e-6)[:, None, None]
    a = torch.where(empty, torch.eye(3, device=x.device).expand_as(a), a)
    b = torch.where(empty[..., 0], torch.zeros_like(b), b)
    return a, b


def map_between(mean: torch.Tensor, cov: torch.Tensor, target_mean: torch.Tensor, target_cov: torch.Tensor,
                eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """The affine map (A (B, 3, 3), b (B, 3)) taking colours of mean (B, 3) and covariance (B, 3, 3)
    to the target's (3,) and (3, 3): A = Σ_target^½ Σ^−½, b = μ_target − A μ."""
    mean_t = target_mean.float().to(mean.device)
    cov_t = target_cov.float().to(mean.device)
    a = _sqrtm(cov_t, eps) @ torch.linalg.inv(_sqrtm(cov.float(), eps))
    return a, mean_t - torch.einsum("bcd,bd->bc", a, mean.float())


def apply_color_map(images: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``images`` (B, 3, H, W) → A x + b per pixel (A (B or 1, 3, 3), b (B or 1, 3) from
    :func:`palette_map`), float32, not clamped."""
    return torch.einsum("bcd,bdhw->bchw", a.expand(images.shape[0], 3, 3), images.float()) + b[..., None, None]


def match_palette(images: torch.Tensor, palettes: list[tuple[torch.Tensor, torch.Tensor]],
                  amount: float = 1.0, shares: torch.Tensor | None = None,
                  maps: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
    """Move ``images`` (B, 3, H, W) in [0, 1] towards the palettes' colours by ``amount`` (0..1).

    palettes: [(RGB mean (3,), RGB covariance (3, 3)), …], one per region; shares: (B or 1, R, H, W)
    the share of each palette per pixel (summing to 1), or None for one palette everywhere. Each
    region's pixels (weighted by its share) get its palette's mean and covariance through one
    colour map (:func:`palette_map`), and the mapped images are blended by the shares, so soft
    mask edges stay soft. ``maps``: colour maps found earlier (e.g. on a clip's first frame), one
    per palette, used instead of measuring these images. Returns float32 (B, 3, H, W) in [0, 1]
    (``images`` themselves when ``amount`` is 0).

    >>> img = torch.rand(1, 3, 8, 8)
    >>> red = (torch.tensor([0.8, 0.1, 0.1]), torch.eye(3) * 1e-4)
    >>> out = match_palette(img, [red])
    >>> [round(float(v), 2) for v in out.mean((0, 2, 3))]
    [0.8, 0.1, 0.1]
    >>> bool(torch.equal(match_palette(img, [red], amount=0.0), img))
    True
    """
    _check(images)
    if not 0.0 <= float(amount) <= 1.0:
        raise InputError(f"palette amount must be in [0, 1], got {amount}")
    if not palettes:
        raise InputError("match_palette needs at least one palette")
    if shares is None and len(palettes) != 1:
        raise InputError(f"{len(palettes)} palettes need their per-pixel shares (B, {len(palettes)}, H, W)")
    if shares is not None and (shares.dim() != 4 or shares.shape[0] not in (1, images.shape[0])
                               or shares.shape[1] != len(palettes) or shares.shape[-2:] != images.shape[-2:]):
        raise InputError(f"palette shares must be ({images.shape[0]} or 1, {len(palettes)}, {images.shape[-2]}, "
                         f"{images.shape[-1]}), got {tuple(shares.shape)}")
    if maps is not None and len(maps) != len(palettes):
        raise InputError(f"{len(maps)} colour maps for {len(palettes)} palettes")
    if float(amount) == 0.0:
        return images
    if shares is not None:
        shares = shares.to(images.device, torch.float32).expand(images.shape[0], -1, -1, -1)
    target = torch.zeros(images.shape, device=images.device, dtype=torch.float32)
    for i, (mean, cov) in enumerate(palettes):
        share = None if shares is None else shares[:, i]
        a, b = maps[i] if maps is not None else palette_map(images, mean, cov, share)
        mapped = apply_color_map(images, a.to(images.device), b.to(images.device)).clamp_(0, 1)
        target += mapped if share is None else share[:, None] * mapped
    return torch.lerp(images.float(), target, float(amount)).clamp(0, 1)


def _sqrtm(cov: torch.Tensor, eps: float) -> torch.Tensor:
    """Symmetric square root of a (…, 3, 3) covariance (batched)."""
    values, vectors = torch.linalg.eigh(cov + eps * torch.eye(3, device=cov.device))
    return vectors @ torch.diag_embed(values.clamp_min(eps).sqrt()) @ vectors.mT
