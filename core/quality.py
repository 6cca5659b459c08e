"""Figures of how well a stylised image keeps its photo and takes its style.

A style a user would keep changes the textures but still shows the scene: its light/dark layout
(tone), its contrast and its edges survive. Each function compares a photo with its stylised
result, both (B, 3, H, W) RGB in [0, 1] of the same size, and returns one value per image, (B,):

* :func:`tone_correlation`: Pearson correlation of the luminance average-pooled 16×, photo vs
  result (1: the same light/dark layout; 0: unrelated; < 0: inverted);
* :func:`contrast_ratio`: std of that pooled luminance, result over photo (1: the same
  large-scale contrast; 0: flat);
* :func:`edge_correlation`: Pearson correlation of the Sobel gradient magnitude of the luminance
  (1: the same edges);
* :func:`gram_style_ratio`: relative Gram style loss of the result over that of the photo, both
  against the style's Gram matrices (0: the style's textures exactly; 1: no closer than the photo);
* :func:`content_error`: relative ``relu4_2`` error of the result against the photo (0: the same
  features; 1: an error as large as the photo's features themselves).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .color import rgb_to_yuv
from .errors import InputError
from .features import StyleFeatures
from .losses import gram_style_loss, relative_content_loss, relative_style_weights
from .vgg import CONTENT_LAYER, VGGEncoder

TONE_POOL = 16


def _check_pair(photo: torch.Tensor, result: torch.Tensor) -> None:
    for name, x in (("photo", photo), ("result", result)):
        if x.dim() != 4 or x.shape[1] != 3:
            raise InputError(f"{name} must be (B, 3, H, W), got {tuple(x.shape)}")
    if photo.shape != result.shape:
        raise InputError(f"photo {tuple(photo.shape)} and result {tuple(result.shape)} must have the same "
                         f"shape; resize the result to the photo first")


def luminance(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB → (B, 1, H, W) BT.601 luma, float32.

    >>> float(luminance(torch.ones(1, 3, 2, 2))[0, 0, 0, 0])
    1.0
    """
    return rgb_to_yuv(images.float())[:, :1]


def pearson(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Pearson correlation of each sample, (B, ...) × (B, ...) → (B,) in [-1, 1]; 0 where either
    is constant (standard deviation below ``eps``: no structure to correlate).

    >>> x = torch.arange(6.).view(1, 6)
    >>> float(pearson(x, 2 * x + 1)), float(pearson(x, -x)), float(pearson(x, torch.ones(1, 6)))
    (1.0, -1.0, 0.0)
    """
    a = a.float().flatten(1)
    b = b.float().flatten(1)
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    sa, sb = a.pow(2).mean(1).sqrt(), b.pow(2).mean(1).sqrt()
    r = (a * b).mean(1) / (sa * sb).clamp_min(eps * eps)
    return torch.where((sa > eps) & (sb > eps), r, torch.zeros_like(r)).clamp(-1, 1)


def pooled_luminance(images: torch.Tensor, pool: int = TONE_POOL) -> torch.Tensor:
    """(B, 3, H, W) → (B, 1, H // pool, W // pool) mean luminance of pool×pool blocks (at least
    one block per side)."""
    lum = luminance(images)
    k = max(1, min(pool, lum.shape[-2], lum.shape[-1]))
    return F.avg_pool2d(lum, k)


def tone_correlation(photo: torch.Tensor, result: torch.Tensor, pool: int = TONE_POOL) -> torch.Tensor:
    """Pearson correlation of the pooled luminance, photo vs result: (B,) in [-1, 1].

    >>> x = torch.rand(1, 3, 64, 64)
    >>> round(float(tone_correlation(x, x)), 4), float(tone_correlation(x, 1 - x)) < 0
    (1.0, True)
    """
    _check_pair(photo, result)
    return pearson(pooled_luminance(photo, pool), pooled_luminance(result, pool))


def contrast_ratio(photo: torch.Tensor, result: torch.Tensor, pool: int = TONE_POOL,
                   eps: float = 1e-6) -> torch.Tensor:
    """Std of the pooled luminance, result over photo: (B,) ≥ 0 (NaN for a flat photo).

    >>> x = torch.rand(1, 3, 64, 64)
    >>> round(float(contrast_ratio(x, x)), 4), float(contrast_ratio(x, torch.full_like(x, 0.5)))
    (1.0, 0.0)
    """
    _check_pair(photo, result)
    p = pooled_luminance(photo, pool).flatten(1).std(1, unbiased=False)
    r = pooled_luminance(result, pool).flatten(1).std(1, unbiased=False)
    return torch.where(p > eps, r / p.clamp_min(eps), torch.full_like(p, float("nan")))


def sobel_magnitude(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB → (B, 1, H, W) Sobel gradient magnitude of the luminance (replicate padding).

    >>> float(sobel_magnitude(torch.ones(1, 3, 8, 8)).abs().max())
    0.0
    """
    lum = F.pad(luminance(images), (1, 1, 1, 1), mode="replicate")
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=images.device) / 8
    kernels = torch.stack([kx, kx.T]).unsqueeze(1)            # (2, 1, 3, 3)
    g = F.conv2d(lum, kernels)                                # (B, 2, H, W)
    return g.pow(2).sum(1, keepdim=True).sqrt()


def edge_correlation(photo: torch.Tensor, result: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of the Sobel magnitude of the luminance, photo vs result: (B,) in [-1, 1].

    >>> x = torch.rand(1, 3, 32, 32)
    >>> round(float(edge_correlation(x, x)), 4)
    1.0
    """
    _check_pair(photo, result)
    return pearson(sobel_magnitude(photo), sobel_magnitude(result))


@torch.no_grad()
def gram_style_ratio(encoder: VGGEncoder, photo: torch.Tensor, result: torch.Tensor,
                     style: StyleFeatures) -> torch.Tensor:
    """Relative Gram style loss (each layer's Gram error divided by the mean square of the
    style's Gram, summed over the style's layers) of the result, over that of the photo: (B,) ≥ 0.

    ``style`` must come from ``encoder`` (:func:`~ganstyle.core.features.compute_style_features`).
    """
    _check_pair(photo, result)
    style.check_encoder(encoder)
    weights = relative_style_weights(style.grams)
    layers = list(weights)
    dtype, device = encoder.dtype, encoder.device
    loss = [gram_style_loss(encoder(x.to(device, dtype), layers), style.grams, weights, reduction="none")
            for x in (result, photo)]
    return (loss[0] / loss[1].clamp_min(1e-12)).float().cpu()


@torch.no_grad()
def content_error(encoder: VGGEncoder, photo: torch.Tensor, result: torch.Tensor,
                  layer: str = CONTENT_LAYER) -> torch.Tensor:
    """Relative ``relu4_2`` error of the result against the photo: (B,) ≥ 0."""
    _check_pair(photo, result)
    dtype, device = encoder.dtype, encoder.device
    f_result = encoder(result.to(device, dtype), [layer])[layer]
    f_photo = encoder(photo.to(device, dtype), [layer])[layer]
    return relative_content_loss(f_result, f_photo, reduction="none").float().cpu()
