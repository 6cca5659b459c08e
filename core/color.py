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
    out = []
    mean_t, cov_t = target_mean.float(), target_cov.float()
    for img in images:
        rgb = img.flatten(1).float()                        # (3, P)
        mean = rgb.mean(1)
        centred = rgb - mean[:, None]
        cov = centred @ centred.T / rgb.shape[1]
        a = _sqrtm(cov_t, eps) @ torch.linalg.inv(_sqrtm(cov, eps))
        out.append((a @ centred + mean_t[:, None]).view_as(img))
    return torch.stack(out).clamp(0, 1)


def match_palette(images: torch.Tensor, palettes: list[tuple[torch.Tensor, torch.Tensor]],
                  amount: float = 1.0, shares: torch.Tensor | None = None) -> torch.Tensor:
    """Move ``images`` (B, 3, H, W) in [0, 1] towards the palettes' colours by ``amount`` (0..1).

    palettes: [(RGB mean (3,), RGB covariance (3, 3)), …], one per region; shares: (B, R, H, W)
    the share of each palette per pixel (summing to 1), or None for one palette everywhere. Each
    palette's :func:`recolor` of the whole image is blended in by its share, so soft mask edges
    stay soft.

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
    if shares is not None and (shares.dim() != 4 or shares.shape[1] != len(palettes)
                               or shares.shape[-2:] != images.shape[-2:]):
        raise InputError(f"palette shares must be (B, {len(palettes)}, {images.shape[-2]}, {images.shape[-1]}), "
                         f"got {tuple(shares.shape)}")
    if float(amount) == 0.0:
        return images
    recolored = [recolor(images, mean.to(images.device), cov.to(images.device)) for mean, cov in palettes]
    if shares is None:
        target = recolored[0]
    else:
        shares = shares.to(images.device, images.dtype)
        target = sum(shares[:, i:i + 1] * r for i, r in enumerate(recolored))
    return torch.lerp(images, target, float(amount)).clamp(0, 1)


def _sqrtm(cov: torch.Tensor, eps: float) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(cov + eps * torch.eye(3, device=cov.device))
    return vectors @ torch.diag(values.clamp_min(eps).sqrt()) @ vectors.T
