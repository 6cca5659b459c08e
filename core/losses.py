"""Losses: content, Gram style, mean/std style, total variation, adversarial, and the
*relative* perceptual loss that the trainer and the optimiser share.

Each is a function; :class:`PerceptualLoss` (relative content + Gram style) and
:class:`AdversarialLoss` are thin ``nn.Module`` forms (kornia's pattern). All return float32
scalars by default (``reduction="mean"``); inputs are checked for shape.

Relative errors: raw VGG feature and Gram magnitudes span six orders of magnitude from
``relu1_1`` to ``relu5_1`` and depend on the encoder's weights. :func:`relative_content_loss`
divides the content MSE by the mean square of its target, and :func:`relative_style_weights`
divides each layer's Gram weight by the mean square of that layer's target Gram, so every term is
an error of order 1 and one set of loss weights works for any encoder, layer and resolution.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from .color import rgb_to_yuv
from .errors import InputError
from .features import gram_matrix, mean_std

ADV_MODES = ("lsgan", "hinge", "nsgan")


def _reduce(x: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    if reduction == "none":
        return x
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got '{reduction}'")


def content_loss(features: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """MSE between feature maps (B, C, H, W) — typically VGG relu4_2 of output and content.

    >>> float(content_loss(torch.ones(1, 2, 3, 3), torch.zeros(1, 2, 3, 3)))
    1.0
    """
    if features.shape != target.shape:
        raise InputError(f"content_loss: features {tuple(features.shape)} and target "
                         f"{tuple(target.shape)} must have the same shape")
    diff = (features.float() - target.float()) ** 2
    if reduction == "none":
        return diff.flatten(1).mean(1)
    return _reduce(diff, reduction)


def gram_style_loss(features: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor],
                    layer_weights: Mapping[str, float] | None = None, reduction: str = "mean") -> torch.Tensor:
    """Sum over layers of weight · MSE(Gram(features), target Gram).

    features: {layer: (B, C, H, W)}; target_grams: {layer: (C, C) or (B, C, C)}.
    Returns a scalar ((B,) with ``reduction="none"``).

    >>> f = {"relu1_1": torch.ones(1, 2, 4, 4)}
    >>> float(gram_style_loss(f, {"relu1_1": torch.full((2, 2), 0.5)}))
    0.0
    """
    total = None
    for name, target in target_grams.items():
        if name not in features:
            raise InputError(f"gram_style_loss: no features for layer '{name}' (have {sorted(features)})")
        g = gram_matrix(features[name])
        t = target.float()
        if t.dim() == 2:
            t = t.unsqueeze(0)
        if t.shape[-2:] != g.shape[-2:]:
            raise InputError(f"gram_style_loss: layer '{name}' Gram is {tuple(g.shape[-2:])}, target "
                             f"is {tuple(t.shape[-2:])}")
        per_sample = ((g - t) ** 2).flatten(1).mean(1)  # (B,)
        w = 1.0 if layer_weights is None else float(layer_weights.get(name, 0.0))
        total = per_sample * w if total is None else total + per_sample * w
    if total is None:
        raise InputError("gram_style_loss: no style layers given")
    return total if reduction == "none" else _reduce(total, reduction)


def relative_content_loss(features: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Content MSE of each image divided by the mean square of its target features.

    features, target: (B, C, H, W). Returns a scalar ((B,) with ``reduction="none"``); 1.0 means
    an error as large as the target itself.

    >>> float(relative_content_loss(torch.zeros(1, 2, 3, 3), torch.full((1, 2, 3, 3), 2.0)))
    1.0
    """
    energy = target.float().pow(2).flatten(1).mean(1).clamp_min(1e-12)
    return _reduce(content_loss(features, target, reduction="none") / energy, reduction)


def relative_style_weights(target_grams: Mapping[str, torch.Tensor],
                           layer_weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """Per-layer Gram weights divided by the mean square of each layer's target Gram.

    ``layer_weights``: {layer: weight} (None: 1 for every layer of ``target_grams``); layers with
    weight 0 are left out. Pass the result to :func:`gram_style_loss` or :func:`gram_error`.

    >>> relative_style_weights({"relu1_1": torch.full((2, 2), 2.0)}, {"relu1_1": 3.0})
    {'relu1_1': 0.75}
    """
    weights = layer_weights if layer_weights is not None else {name: 1.0 for name in target_grams}
    unknown = sorted(set(weights) - set(target_grams))
    if unknown:
        raise InputError(f"style layer weights name layers {unknown} that the style target does not "
                         f"have (it has {list(target_grams)})")
    return {name: float(w) / max(float(target_grams[name].float().pow(2).mean()), 1e-12)
            for name, w in weights.items() if w > 0}


def gram_error(grams: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor],
               layer_weights: Mapping[str, float]) -> torch.Tensor:
    """Sum over ``layer_weights`` of weight · MSE(Gram, target Gram), for Gram matrices already
    computed (e.g. summed over tiles). grams and targets: {layer: (C, C) or (B, C, C)}; returns a
    scalar (mean over the batch).

    >>> float(gram_error({"a": torch.ones(2, 2)}, {"a": torch.zeros(2, 2)}, {"a": 0.5}))
    0.5
    """
    total = None
    for name, weight in layer_weights.items():
        g, t = grams[name].float(), target_grams[name].float()
        if g.shape[-2:] != t.shape[-2:]:
            raise InputError(f"gram_error: layer '{name}' Gram is {tuple(g.shape[-2:])}, target is "
                             f"{tuple(t.shape[-2:])}")
        term = weight * (g - t).pow(2).mean()
        total = term if total is None else total + term
    if total is None:
        raise InputError("gram_error: no style layers given")
    return total


def mean_std_style_loss(features: Mapping[str, torch.Tensor], target_means: Mapping[str, torch.Tensor],
                        target_stds: Mapping[str, torch.Tensor], reduction: str = "mean") -> torch.Tensor:
    """Sum over layers of MSE(mean) + MSE(std) of channel statistics (AdaIN-style)."""
    total = None
    for name in target_means:
        m, s = mean_std(features[name])
        per = ((m - target_means[name].float()) ** 2).mean(1) + ((s - target_stds[name].float()) ** 2).mean(1)
        total = per if total is None else total + per
    if total is None:
        raise InputError("mean_std_style_loss: no layers given")
    return total if reduction == "none" else _reduce(total, reduction)


def total_variation(images: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels, (B, C, H, W) → scalar.

    Normalised per pixel, so it does not grow with image size.

    >>> float(total_variation(torch.zeros(1, 3, 8, 8)))
    0.0
    """
    if images.dim() != 4:
        raise InputError(f"total_variation expects (B, C, H, W), got {tuple(images.shape)}")
    dh = (images[:, :, 1:, :] - images[:, :, :-1, :]).abs().flatten(1).mean(1)
    dw = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().flatten(1).mean(1)
    per_sample = dh + dw
    return per_sample if reduction == "none" else _reduce(per_sample, reduction)


def tone_loss(images: torch.Tensor, target: torch.Tensor, pool: int = 16, reduction: str = "mean") -> torch.Tensor:
    """Low-pass luminance layout error: MSE between the luminance maps of ``images`` and
    ``target`` (both (B, 3, H, W) RGB in [0, 1]), each average-pooled ``pool``×``pool`` and with
    its own mean removed.

    It keeps where a picture is light and where it is dark (and how strongly), which the deep
    content layer barely constrains: without it a style's Gram target can invert a photo's tonal
    layout. The mean is free, so the style may still lighten or darken the whole picture.
    Returns a scalar ((B,) with ``reduction="none"``), in squared luminance units.

    >>> x = torch.rand(2, 3, 32, 32)
    >>> float(tone_loss(x, x)), float(tone_loss(x + 0.1, x)) < 1e-12
    (0.0, True)
    >>> bool(tone_loss(1 - x, x) > 0)
    True
    """
    if images.shape != target.shape or images.dim() != 4 or images.shape[1] != 3:
        raise InputError(f"tone_loss: images {tuple(images.shape)} and target {tuple(target.shape)} must both "
                         f"be (B, 3, H, W)")
    def layout(x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(rgb_to_yuv(x.float())[:, :1], pool, ceil_mode=True)
        return y - y.mean(dim=(2, 3), keepdim=True)
    per_sample = (layout(images) - layout(target)).pow(2).flatten(1).mean(1)
    return _reduce(per_sample, reduction)


def adversarial_loss(logits: torch.Tensor, target_is_real: bool, mode: str = "lsgan",
                     for_discriminator: bool = True) -> torch.Tensor:
    """GAN loss on discriminator outputs of any shape (e.g. PatchGAN (B, 1, h, w)).

    mode: "lsgan" (least squares), "hinge", or "nsgan" (non-saturating BCE).
    For the generator call with ``target_is_real=True, for_discriminator=False``.

    >>> float(adversarial_loss(torch.ones(2, 1, 4, 4), True, "lsgan"))
    0.0
    """
    logits = logits.float()
    if mode == "lsgan":
        return ((logits - (1.0 if target_is_real else 0.0)) ** 2).mean()
    if mode == "nsgan":
        target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)
    if mode == "hinge":
        if for_discriminator:
            return F.relu(1.0 - logits).mean() if target_is_real else F.relu(1.0 + logits).mean()
        return -logits.mean()
    raise ValueError(f"adversarial mode must be one of {ADV_MODES}, got '{mode}'")


def random_small_warps(batch: int, *, generator: torch.Generator, max_degrees: float = 2.0,
                       max_shift: float = 0.01, max_scale: float = 0.02) -> torch.Tensor:
    """(B, 2, 3) affine matrices (``F.affine_grid``'s normalised coordinates) of small random
    motions: rotation up to ``max_degrees``, shift up to ``max_shift`` of the image, zoom up to
    ``max_scale``, drawn from ``generator`` (so a training step's warps are reproducible)."""
    u = torch.rand(batch, 4, generator=generator) * 2 - 1
    angle = u[:, 0] * max_degrees * torch.pi / 180
    scale = 1 + u[:, 1] * max_scale
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    shift = u[:, 2:] * 2 * max_shift             # normalised coordinates span 2
    return torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)


def warp(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``images`` (B, C, H, W) moved by the affine matrices ``theta`` (B, 2, 3), bilinear, with
    reflected borders."""
    grid = F.affine_grid(theta.to(images.device, torch.float32), list(images.shape), align_corners=False)
    return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def warp_consistency_loss(result_of_moved: torch.Tensor, result: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Compound regularisation (Wang et al. 2020, "Consistent Video Style Transfer via Compound
    Regularization"): the generator's result for a slightly moved, noisy photo should be its result
    for the photo, moved the same way. MSE between ``result_of_moved`` and ``warp(result, theta)``,
    both (B, 3, H, W) in [0, 1].

    >>> x = torch.rand(2, 3, 16, 16)
    >>> theta = torch.eye(2, 3).expand(2, 2, 3)
    >>> float(warp_consistency_loss(x, x, theta)) < 1e-10
    True
    """
    return F.mse_loss(result_of_moved.float(), warp(result, theta))


class PerceptualLoss(nn.Module):
    """Relative content and Gram style errors against fixed style targets (the trainer's and the
    optimiser's loss, less total variation and the adversarial term).

    target_grams: {layer: (C, C)}; layer_weights: {layer: weight} before normalisation (None: 1
    each). ``forward(features, content_target)`` takes VGG features {layer: (B, C, H, W)} holding
    ``content_layer`` and the style layers, and returns ``(content, style)`` scalars.

    >>> loss = PerceptualLoss({"s": torch.ones(2, 2)}, content_layer="c")
    >>> feats = {"c": torch.ones(1, 2, 4, 4), "s": torch.ones(1, 2, 4, 4)}
    >>> [round(float(t), 4) for t in loss(feats, torch.ones(1, 2, 4, 4))]
    [0.0, 0.25]
    """

    def __init__(self, target_grams: Mapping[str, torch.Tensor], layer_weights: Mapping[str, float] | None = None,
                 *, content_layer: str = "relu4_2"):
        super().__init__()
        self.content_layer = content_layer
        self.target_grams = {name: g.float() for name, g in target_grams.items()}
        self.layer_weights = relative_style_weights(self.target_grams, layer_weights)

    def forward(self, features: Mapping[str, torch.Tensor], content_target: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        content = relative_content_loss(features[self.content_layer], content_target)
        if not self.layer_weights:  # every style layer weighted 0
            return content, content.new_zeros(())
        style = gram_style_loss(features, {k: self.target_grams[k] for k in self.layer_weights},
                                self.layer_weights)
        return content, style


class AdversarialLoss(nn.Module):
    def __init__(self, mode: str = "lsgan"):
        super().__init__()
        if mode not in ADV_MODES:
            raise ValueError(f"adversarial mode must be one of {ADV_MODES}, got '{mode}'")
        self.mode = mode

    def forward(self, logits: torch.Tensor, target_is_real: bool, for_discriminator: bool = True):
        return adversarial_loss(logits, target_is_real, self.mode, for_discriminator)
