"""The decoders' losses and starting points (:mod:`ganstyle.core.training.decoder` runs them).

Stage ``reconstruct``: :func:`reconstruction_loss` (pixel L1 + relative VGG feature error at every
level up to the decoder's own). Stage ``style``: :func:`fused_targets` (photo features fused with a
painting's statistics, the painting's Gram matrices) and :func:`style_losses`. Starting points: a
linear decoder is solved by least squares (:func:`fit_linear_decoder`), a deeper fresh one starts at
data-scaled weights (:func:`scale_initial_weights`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..decoder import DECODER_LEVELS, EncoderDecoder
from ..features import gram_matrix
from ..fusion import feature_moments, fuse
from ..losses import gram_style_loss, relative_style_weights, total_variation
from ..vgg import STYLE_LAYERS


def relative_mse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the target's mean square: scale-free across VGG layers."""
    return F.mse_loss(x, target) / target.detach().pow(2).mean().clamp_min(1e-8)


def taps_up_to(level: str) -> list[str]:
    """The decodable VGG levels from relu1_1 down to ``level``."""
    return list(DECODER_LEVELS[: DECODER_LEVELS.index(level) + 1])


def reconstruction_loss(model: EncoderDecoder, images: torch.Tensor, level: str, targets: dict[str, torch.Tensor],
                        lambda_pixel: float, lambda_feature: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Decode ``targets[level]`` (the features of ``images``; ``targets`` holds every level up to
    it) and compare: pixel L1 + mean relative feature MSE over the VGG levels up to ``level``.
    Returns (loss, figures for the log)."""
    out = model.decoders[level](targets[level])
    taps = taps_up_to(level)
    got = model.encoder(out, taps)
    feature = sum(relative_mse(got[t], targets[t]) for t in taps) / len(taps)
    pixel = F.l1_loss(out, images)
    loss = lambda_pixel * pixel + lambda_feature * feature
    return loss, {f"{level}/pixel": pixel.item(), f"{level}/feature": feature.item()}


def fused_targets(model: EncoderDecoder, photos: torch.Tensor, paintings: torch.Tensor, level: str
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """What stage style trains towards: the photos' ``level`` features fused with each painting's
    statistics (B, C, h, w), and each painting's Gram matrices {layer: (B, C, C)} at relu1_1 … relu5_1."""
    with torch.no_grad():
        content = model.encoder(photos, [level])[level]
        style = model.encoder(paintings, sorted({*STYLE_LAYERS, level} & set(model.encoder.layer_names)))
        fused = torch.cat([fuse(content[i:i + 1], feature_moments(content[i:i + 1]),
                                feature_moments(style[level][i:i + 1]), model.config.fusion_at(level))
                           for i in range(photos.shape[0])])
        grams = {name: gram_matrix(style[name]) for name in STYLE_LAYERS if name in style}
    return fused, grams


def style_losses(model: EncoderDecoder, out: torch.Tensor, fused: torch.Tensor, grams: dict[str, torch.Tensor],
                 level: str) -> dict[str, torch.Tensor]:
    """Stage style's perceptual terms of decoded pictures ``out`` (B, 3, H, W): content (relative
    error of their ``level`` features against the fused target) and Gram style (each layer relative
    to its target's mean square), plus total variation."""
    feats = model.encoder(out, [*grams, level] if level not in grams else list(grams))
    weights = relative_style_weights({k: v.mean(0) for k, v in grams.items()})
    return {"content": relative_mse(feats[level], fused), "style": gram_style_loss(feats, grams, weights),
            "tv": total_variation(out)}


def scale_initial_weights(model: EncoderDecoder, level: str, images: torch.Tensor) -> None:
    """Data-dependent start (LSUV, Mishkin & Matas 2016) for a fresh decoder: its input scale brings
    ``images``' features to unit size, each convolution is rescaled so that its output has unit
    variance, the last one so that the first pictures have the images' mean and spread. VGG features
    are large (relu2_1's reach tens), and without this Adam spends hundreds of steps shrinking the
    first outputs."""
    decoder = model.decoders[level]
    convs = [m for m in decoder if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        x = model.encoder(images, [level])[level]
        decoder.input_scale.fill_(1.0 / x.pow(2).mean().sqrt().clamp_min(1e-8))
        x = x * decoder.input_scale
        for module in decoder:
            y = module(x)
            if module is convs[-1]:
                gain = images.std() / y.std().clamp_min(1e-8)
                module.weight.mul_(gain)
                module.bias.mul_(gain).add_(images.mean() - module(x).mean())
            elif isinstance(module, torch.nn.Conv2d):
                module.weight.div_(y.std().clamp_min(1e-8))
                module.bias.div_(y.std().clamp_min(1e-8))
            x = module(x)


def is_linear(model: EncoderDecoder, level: str) -> bool:
    """Whether ``level``'s decoder is one convolution (a linear map of the features)."""
    return sum(isinstance(m, torch.nn.Conv2d) for m in model.decoders[level]) == 1


def fit_linear_decoder(model: EncoderDecoder, level: str, images: torch.Tensor, ridge: float = 1e-4,
                       max_pixels: int = 100_000) -> bool:
    """Give a one-convolution decoder (relu1_1's) its least-squares weights on ``images``
    (B, 3, H, W): the exact minimiser of the pixel MSE, found in closed form instead of many Adam
    steps. Returns False (and changes nothing) for deeper decoders."""
    if not is_linear(model, level):
        return False
    conv = next(m for m in model.decoders[level] if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        feats = model.encoder(images, [level])[level]
        padded = F.pad(feats, (1, 1, 1, 1), mode="reflect")
        columns = F.unfold(padded, 3).transpose(1, 2).reshape(-1, feats.shape[1] * 9)          # (N, C·9)
        target = images.permute(0, 2, 3, 1).reshape(-1, 3)                                       # (N, 3)
        keep = torch.randperm(columns.shape[0], generator=torch.Generator().manual_seed(0))[:max_pixels]
        columns, target = columns[keep].double(), target[keep].double()   # a sample: the solution barely moves
        columns = torch.cat([columns, torch.ones(columns.shape[0], 1, dtype=columns.dtype)], 1)
        gram = columns.T @ columns
        damping = ridge * gram.diagonal()[:-1].mean()          # on the weights only: the bias is free
        gram += torch.diag(torch.cat([damping.expand(gram.shape[0] - 1), damping.new_zeros(1)]))
        solution = torch.linalg.solve(gram, columns.T @ target)                                     # (C·9 + 1, 3)
        conv.weight.copy_(solution[:-1].T.reshape(conv.weight.shape).float())
        conv.bias.copy_(solution[-1].float())
    return True
