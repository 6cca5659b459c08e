"""Fusing content features with a painting's feature statistics, in closed form.

The encoder–decoder model (:mod:`ganstyle.core.decoder`) stylises by replacing the statistics of
the photo's VGG features with the painting's, then decoding. Two fusions:

* :func:`adain` (Huang & Belongie 2017): each channel takes the painting's mean and standard
  deviation. Cheap; keeps the photo's channel correlations.
* :func:`wct` (Li et al. 2017): whitening with the photo's feature covariance, then colouring with
  the painting's: the fused features have exactly the painting's mean and covariance (and so its
  Gram matrix). Stronger style; an eigendecomposition per layer (float64, C ≤ 512: milliseconds).

Statistics are :class:`Moments` (mean (C,), covariance (C, C), float32). A painting's come from its
:class:`~ganstyle.core.features.StyleFeatures` (:func:`style_moments`: the Gram matrix there is the
uncentred second moment divided by C). A photo's come from its own features
(:func:`feature_moments`), optionally weighted by a mask so that each region is whitened with its
own statistics. Passing the photo's moments in, rather than computing them inside, is what lets a
tiled run use the statistics of the whole image.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import InputError

FUSIONS = ("wct", "adain")
# what a model may name: one fusion at every level, or "hybrid" (EncoderDecoderConfig.fusion_at)
MODEL_FUSIONS = (*FUSIONS, "hybrid")
_EIG_FLOOR = 1e-5   # eigenvalues below this are treated as this (flat features, a grey painting)


@dataclass(frozen=True)
class Moments:
    """Feature statistics of one image (or region): ``mean`` (C,) and ``cov`` (C, C), float32."""
    mean: torch.Tensor
    cov: torch.Tensor

    @property
    def std(self) -> torch.Tensor:
        return self.cov.diagonal().clamp_min(0).add(1e-5).sqrt()


def feature_moments(features: torch.Tensor, weights: torch.Tensor | None = None) -> Moments:
    """Mean and covariance of (1, C, H, W) features over the pixels, optionally weighted by
    (1, 1, H, W) non-negative ``weights`` (a soft mask at the features' resolution).

    >>> f = torch.arange(8.).view(1, 2, 2, 2)
    >>> m = feature_moments(f)
    >>> m.mean.tolist(), m.cov[0, 0].item()
    ([1.5, 5.5], 1.25)
    """
    if features.dim() != 4 or features.shape[0] != 1:
        raise InputError(f"feature_moments expects (1, C, H, W) features, got {tuple(features.shape)}")
    f = features[0].flatten(1).double()                                  # (C, N)
    if weights is None:
        w = torch.full((1, f.shape[1]), 1.0 / f.shape[1], dtype=f.dtype, device=f.device)
    else:
        w = weights.reshape(1, -1).to(f)
        total = w.sum()
        if total <= 0:
            raise InputError("feature_moments: the weights (mask) are zero everywhere")
        w = w / total
    mean = (f * w).sum(1)                                                # (C,)
    centred = f - mean[:, None]
    cov = (centred * w) @ centred.T                                      # (C, C)
    return Moments(mean.float(), cov.float())


def style_moments(grams: torch.Tensor, means: torch.Tensor) -> Moments:
    """A painting's moments from its normalised Gram matrix (C, C) (:func:`~ganstyle.core.features.
    gram_matrix`: the second moment divided by C) and channel means (C,).

    >>> f = torch.rand(1, 3, 4, 4)
    >>> from ganstyle.core.features import gram_matrix
    >>> m = style_moments(gram_matrix(f)[0], f.mean((2, 3))[0])
    >>> torch.allclose(m.cov, feature_moments(f).cov, atol=1e-5)
    True
    """
    c = grams.shape[-1]
    second = grams.double() * c
    mean = means.double()
    cov = second - torch.outer(mean, mean)
    return Moments(mean.float(), ((cov + cov.T) / 2).float())


def _matrix_power(cov: torch.Tensor, power: float) -> torch.Tensor:
    """cov^power for a symmetric PSD (C, C) matrix, via float64 eigendecomposition; eigenvalues are
    floored (flat directions are neither amplified nor divided by zero)."""
    values, vectors = torch.linalg.eigh(cov.double())
    values = values.clamp_min(_EIG_FLOOR)
    return (vectors * values.pow(power)) @ vectors.T


def wct_matrix(content: Moments, style: Moments) -> torch.Tensor:
    """The (C, C) map T with T·(f − μ_c) + μ_s having the style's covariance: Σ_s^½ Σ_c^−½ (float32)."""
    return (_matrix_power(style.cov, 0.5) @ _matrix_power(content.cov, -0.5)).float()


def wct(features: torch.Tensor, content: Moments, style: Moments) -> torch.Tensor:
    """Whitening–colouring transform: (B, C, H, W) features → the same shape, with ``content``'s
    statistics replaced by ``style``'s (exactly, when ``content`` are the features' own).

    >>> f, s = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8) * 3 + 1
    >>> out = wct(f, feature_moments(f), feature_moments(s))
    >>> torch.allclose(feature_moments(out).cov, feature_moments(s).cov, atol=1e-3)
    True
    """
    _check(features, content, style)
    t = wct_matrix(content, style).to(features)
    b, c, h, w = features.shape
    centred = features.reshape(b, c, h * w) - content.mean.to(features).view(1, c, 1)
    out = torch.matmul(t, centred) + style.mean.to(features).view(1, c, 1)
    return out.view(b, c, h, w)


def adain(features: torch.Tensor, content: Moments, style: Moments) -> torch.Tensor:
    """Adaptive instance normalisation: each channel of (B, C, H, W) ``features`` gets the style's
    mean and standard deviation in place of ``content``'s.

    >>> f = torch.randn(1, 2, 8, 8)
    >>> s = Moments(torch.tensor([1.0, -1.0]), torch.diag(torch.tensor([4.0, 0.25])))
    >>> out = adain(f, feature_moments(f), s)
    >>> [round(v, 3) for v in out.mean((0, 2, 3)).tolist()]
    [1.0, -1.0]
    """
    _check(features, content, style)
    c = features.shape[1]
    scale = (style.std / content.std).to(features).view(1, c, 1, 1)
    return (features - content.mean.to(features).view(1, c, 1, 1)) * scale + style.mean.to(features).view(1, c, 1, 1)


def fuse(features: torch.Tensor, content: Moments, style: Moments, method: str = "wct") -> torch.Tensor:
    """:func:`wct` or :func:`adain` by name (:data:`FUSIONS`)."""
    if method == "wct":
        return wct(features, content, style)
    if method == "adain":
        return adain(features, content, style)
    raise InputError(f"fusion must be one of {list(FUSIONS)}, got {method!r}")


def _check(features: torch.Tensor, content: Moments, style: Moments) -> None:
    if features.dim() != 4:
        raise InputError(f"fusion expects (B, C, H, W) features, got {tuple(features.shape)}")
    c = features.shape[1]
    for what, m in (("content", content), ("style", style)):
        if m.mean.shape != (c,) or m.cov.shape != (c, c):
            raise InputError(f"{what} statistics are for {m.mean.shape[0]} channels, the features have {c}")
