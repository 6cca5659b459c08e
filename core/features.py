"""Style statistics of VGG features: Gram matrices and channel mean/std, and the
:class:`StyleFeatures` value (one or more style images blended with weights)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .config import bounded, check_options
from .errors import InputError
from .vgg import STYLE_LAYERS, VGGEncoder

MIN_STYLE_SIDE = 8   # pixels: below this a picture has no texture to measure (and VGG's deep layers vanish)


def gram_matrix(features: torch.Tensor, compute_dtype: torch.dtype | None = torch.float32) -> torch.Tensor:
    """Normalised Gram matrix.

    features: (B, C, H, W) → (B, C, C) in float32, divided by C·H·W so values do not grow with
    image size (a 2× larger image of the same texture has the same Gram).
    compute_dtype: dtype of the product (accumulation is fp32 on GPUs either way); None keeps the
    features' dtype (e.g. bf16 under autocast: ~2x faster, entries rounded to bf16).
    Channels-last features are multiplied in place (as (B, H·W, C)), without a layout copy.

    >>> g = gram_matrix(torch.ones(1, 2, 4, 4))
    >>> g.shape, float(g[0, 0, 0])
    (torch.Size([1, 2, 2]), 0.5)
    """
    if features.dim() != 4:
        raise InputError(f"gram_matrix expects (B, C, H, W) features, got shape {tuple(features.shape)}")
    b, c, h, w = features.shape
    if compute_dtype is not None:
        features = features.to(compute_dtype)   # keeps the memory layout
    if features.is_contiguous() or not features.is_contiguous(memory_format=torch.channels_last):
        f = features.reshape(b, c, h * w)
        gram = torch.bmm(f, f.transpose(1, 2))
    else:
        f = features.permute(0, 2, 3, 1).reshape(b, h * w, c)   # a view of channels-last memory
        gram = torch.bmm(f.transpose(1, 2), f)
    return gram.float() / (c * h * w)


def mean_std(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation: (B, C, H, W) → ((B, C), (B, C)), float32.

    >>> m, s = mean_std(torch.arange(4.).view(1, 1, 2, 2))
    >>> float(m), round(float(s), 4)
    (1.5, 1.118)
    """
    if features.dim() != 4:
        raise InputError(f"mean_std expects (B, C, H, W) features, got shape {tuple(features.shape)}")
    f = features.float().flatten(2)
    return f.mean(dim=2), (f.var(dim=2, unbiased=False) + eps).sqrt()


def resize_long_side(images: torch.Tensor, long_side: int) -> torch.Tensor:
    """Resize (B, C, H, W) so max(H, W) == long_side, keeping aspect (antialiased bilinear)."""
    h, w = images.shape[-2:]
    scale = long_side / max(h, w)
    if abs(scale - 1.0) < 1e-6:
        return images
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=scale < 1)


@dataclass
class StyleFeatures:
    """Target statistics of a style: per-layer Gram matrices (C, C) and mean/std (C,), already
    blended over the style images. Records the encoder that made it (``encoder_identity``),
    so features from another encoder are refused by :meth:`check_encoder`."""
    layers: tuple[str, ...]
    grams: dict[str, torch.Tensor]
    means: dict[str, torch.Tensor]
    stds: dict[str, torch.Tensor]
    encoder_identity: str
    encoder_arch: str
    style_size: int
    blend_weights: tuple[float, ...] = field(default=(1.0,))
    # RGB colour statistics of the (blended) style images, in [0, 1] units: mean (3,) and
    # covariance (3, 3). Optional (None for features made without them); used to recolour the
    # content with the style's palette (core.optimize's init="content_colored").
    color_mean: torch.Tensor | None = None
    color_cov: torch.Tensor | None = None

    def check_read_by(self, expected: str, reader: str) -> None:
        """Refuse these features unless they were measured with the encoder whose identity is
        ``expected`` (what a model reads; empty: any), naming its registry name when it is known.
        ``reader``: what reads them, for the message ("this any-style model")."""
        if not expected or self.encoder_identity == expected:
            return
        from .hub import encoder_for_identity

        name = encoder_for_identity(expected)
        raise InputError(f"these style features were measured with encoder {self.encoder_identity}; {reader} reads "
                         f"features of encoder {expected}" + (f" (registry name '{name}')" if name else "")
                         + ": load that encoder in Load VGG Encoder and measure Style Features again"
                         + (f" (CLI: --encoder {name})" if name else ""))

    def check_encoder(self, encoder: VGGEncoder) -> None:
        if encoder.identity != self.encoder_identity:
            raise InputError(
                f"these style features were computed with encoder {self.encoder_identity} but the "
                f"encoder in use is {encoder.identity}; recompute StyleFeatures with the same encoder")

    def to(self, device: torch.device | str) -> StyleFeatures:
        move = lambda d: {k: v.to(device) for k, v in d.items()}  # noqa: E731
        move_opt = lambda t: None if t is None else t.to(device)  # noqa: E731
        return StyleFeatures(self.layers, move(self.grams), move(self.means), move(self.stds),
                             self.encoder_identity, self.encoder_arch, self.style_size, self.blend_weights,
                             move_opt(self.color_mean), move_opt(self.color_cov))


@dataclass
class StyleFeaturesOptions:
    """The user-facing setting of :func:`compute_style_features`, declared once: the Style
    Features node's input and the ``--style-size`` flag of ``ganstyle stylize`` and ``ganstyle
    optimize`` are made from it and checked by :meth:`checked`."""
    style_size: int = bounded(512, 16, 16384, doc="Long side, in pixels, the style images are resized to "
                              "before their style is measured. Larger = larger brush strokes in the result.")

    def checked(self) -> StyleFeaturesOptions:
        """These options, checked against the field's bounds (an
        :class:`~ganstyle.core.config.OptionError` naming the field otherwise)."""
        return check_options(self)


def compute_style_features(encoder: VGGEncoder, images: torch.Tensor | Sequence[torch.Tensor],
                           weights: Sequence[float] | None = None, *,
                           style_size: int | None = StyleFeaturesOptions.style_size,
                           layers: Sequence[str] = STYLE_LAYERS) -> StyleFeatures:
    """Blend the style statistics of one or more images.

    images: (B, 3, H, W) in [0, 1], or a list of (3, H, W)/(1, 3, H, W) tensors of any sizes.
    weights: one non-negative blend weight per image (normalised to sum 1); default equal.
    style_size: each image is resized so its long side is this many pixels (None: as is).
    """
    if isinstance(images, torch.Tensor):
        if images.dim() != 4 or images.shape[1] != 3:
            raise InputError(f"style images must be (B, 3, H, W), got {tuple(images.shape)}")
        image_list = list(images.unbind(0))
    else:
        image_list = [img[0] if img.dim() == 4 else img for img in images]
    if not image_list:
        raise InputError("no style images given (empty batch)")
    for i, img in enumerate(image_list):
        if img.dim() != 3 or img.shape[0] != 3:
            raise InputError(f"style image {i} must be (3, H, W), got {tuple(img.shape)}")
        if not torch.isfinite(img).all():
            raise InputError(f"style image {i} contains NaN or Inf values")
        if min(img.shape[-2:]) < MIN_STYLE_SIDE:
            raise InputError(f"style image {i} is {img.shape[-1]}×{img.shape[-2]} pixels: too small to have a style; "
                             f"give a picture at least {MIN_STYLE_SIDE} pixels on each side")
    n = len(image_list)
    w = [1.0] * n if weights is None else [float(x) for x in weights]
    if len(w) != n:
        raise InputError(f"got {len(w)} blend weights for {n} style images; give one weight per image")
    if any(x < 0 for x in w) or sum(w) <= 0:
        raise InputError(f"blend weights must be non-negative with a positive sum, got {w}")
    total = sum(w)
    w = [x / total for x in w]

    grams: dict[str, torch.Tensor] = {}
    means: dict[str, torch.Tensor] = {}
    stds: dict[str, torch.Tensor] = {}
    color_mean = torch.zeros(3)
    color_moment = torch.zeros(3, 3)  # blended E[rgb rgbᵀ]; covariance = moment − mean meanᵀ
    with torch.no_grad():
        for weight, img in zip(w, image_list):
            x = img.unsqueeze(0).to(encoder.device, torch.float32).clamp(0, 1)
            if style_size:
                x = resize_long_side(x, style_size)
            rgb = x[0].flatten(1).float().cpu()  # (3, H·W)
            color_mean += rgb.mean(1) * weight
            color_moment += (rgb @ rgb.T) / rgb.shape[1] * weight
            feats = encoder(x, layers)
            for name in layers:
                g = gram_matrix(feats[name])[0] * weight
                m, s = mean_std(feats[name])
                grams[name] = grams.get(name, 0) + g
                means[name] = means.get(name, 0) + m[0] * weight
                stds[name] = stds.get(name, 0) + s[0] * weight
    color_cov = color_moment - torch.outer(color_mean, color_mean)
    return StyleFeatures(tuple(layers), grams, means, stds, encoder.identity, encoder.arch,
                         int(style_size or 0), tuple(w), color_mean.to(encoder.device),
                         color_cov.to(encoder.device))


def blend_style_features(styles: Sequence[StyleFeatures], weights: Sequence[float] | None = None) -> StyleFeatures:
    """Mix already-computed styles (each possibly from several images, at its own style size).

    Gram matrices, channel means and colour moments blend linearly, as if the images had been
    given to :func:`compute_style_features` together. All styles must come from the same encoder.
    """
    if not styles:
        raise InputError("no styles to blend")
    wrong = [i for i, s in enumerate(styles, start=1) if not isinstance(s, StyleFeatures)]
    if wrong:
        raise InputError(f"style {wrong[0]} is a {type(styles[wrong[0] - 1]).__name__}, not StyleFeatures "
                         f"(connect the output of a Style Features node)")
    w = [1.0] * len(styles) if weights is None else [float(x) for x in weights]
    if len(w) != len(styles):
        raise InputError(f"got {len(w)} blend weights for {len(styles)} styles")
    if any(x < 0 for x in w) or sum(w) <= 0:
        raise InputError(f"blend weights must be non-negative with a positive sum, got {w}")
    w = [x / sum(w) for x in w]
    first = styles[0]
    for i, s in enumerate(styles[1:], start=2):
        if s.encoder_identity != first.encoder_identity:
            raise InputError(f"style {i} was computed with encoder {s.encoder_identity}, style 1 with "
                             f"{first.encoder_identity}; use one encoder for every style")
        if s.layers != first.layers:
            raise InputError(f"style {i} has layers {s.layers}, style 1 has {first.layers}")
    mix = lambda attr: {k: sum(wi * getattr(s, attr)[k] for wi, s in zip(w, styles)) for k in first.layers}  # noqa: E731
    color_mean = color_cov = None
    if all(s.color_mean is not None and s.color_cov is not None for s in styles):
        color_mean = sum(wi * s.color_mean for wi, s in zip(w, styles))
        moment = sum(wi * (s.color_cov + torch.outer(s.color_mean, s.color_mean)) for wi, s in zip(w, styles))
        color_cov = moment - torch.outer(color_mean, color_mean)
    return StyleFeatures(first.layers, mix("grams"), mix("means"), mix("stds"), first.encoder_identity,
                         first.encoder_arch, max(s.style_size for s in styles), tuple(w), color_mean, color_cov)
