"""PatchGAN discriminator with spectral normalisation, optionally multi-scale.

A PatchGAN (Isola et al. 2017, pix2pix) classifies overlapping patches rather than whole images:
its output is a map of logits, one per receptive field (70×70 pixels for the default 3 layers).
That is what a *style* discriminator should judge — local texture and brush strokes, not global
layout. Spectral normalisation (Miyato et al. 2018) on every convolution keeps it 1-Lipschitz-ish,
which is far more stable than batch norm for the tiny, single-style datasets typical here.

With ``num_scales > 1`` the same architecture is applied to 2×, 4×… average-pooled copies of the
input (pix2pixHD's multi-scale discriminator), so larger structures are judged as well.

Input: RGB (B, 3, H, W) in [0, 1]. Output: a list with one logit map (B, 1, h_s, w_s) per scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from .config import bounded, config_from_dict, config_to_dict
from .errors import InputError


@dataclass
class DiscriminatorConfig:
    base_channels: int = bounded(64, 1, 1024, doc="channels of the first convolution")
    max_channels: int = bounded(512, 1, 2048, doc="cap on channels as resolution halves")
    num_layers: int = bounded(3, 1, 6, doc="stride-2 convolutions (3 → 70×70 patches)")
    num_scales: int = bounded(1, 1, 4, doc="image scales judged (1 = plain PatchGAN)")
    spectral_norm: bool = bounded(True, doc="spectral normalisation on every convolution")
    num_styles: int = bounded(0, 0, 4096, legacy=0,
                              doc="0: judges one style. N: a projection discriminator (Miyato & Koyama 2018) "
                                  "judging 'a real crop of style i' for a library of N styles")

    def receptive_field(self) -> int:
        """Patch size (pixels) seen by one output logit at the finest scale (70 for 3 layers)."""
        rf, jump = 1, 1
        for stride in [2] * self.num_layers + [1, 1]:  # all convolutions are 4×4
            rf += 3 * jump
            jump *= stride
        return rf

    def min_input_size(self) -> int:
        """Smallest H/W giving at least one output logit at the coarsest scale."""
        # Each stride-2 4×4 conv with padding 1 maps n → n // 2; each stride-1 4×4 conv with
        # padding 1 maps n → n - 1. Two stride-1 convs need n ≥ 3 after the stride-2 stack.
        per_scale = 3 * 2 ** self.num_layers
        return per_scale * 2 ** (self.num_scales - 1)


def _conv(cin: int, cout: int, stride: int, use_sn: bool) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, kernel_size=4, stride=stride, padding=1)
    return spectral_norm(conv) if use_sn else conv


class PatchGAN(nn.Module):
    """One scale: ``num_layers`` stride-2 4×4 convolutions (LeakyReLU 0.2), one stride-1
    convolution, and a 1-channel stride-1 convolution producing logits. No normalisation layers
    (spectral norm replaces them), so each sample is judged independently of the batch.

    With ``num_styles`` the logit of each patch adds the projection ⟨e_s, h⟩ of its last features
    h on style s's embedding (zero at the start, so training begins unconditioned)."""

    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        c = config.base_channels
        layers: list[nn.Module] = [_conv(3, c, 2, config.spectral_norm), nn.LeakyReLU(0.2, inplace=True)]
        for _ in range(config.num_layers - 1):
            nxt = min(c * 2, config.max_channels)
            layers += [_conv(c, nxt, 2, config.spectral_norm), nn.LeakyReLU(0.2, inplace=True)]
            c = nxt
        nxt = min(c * 2, config.max_channels)
        layers += [_conv(c, nxt, 1, config.spectral_norm), nn.LeakyReLU(0.2, inplace=True)]
        if not config.num_styles:   # one Sequential, as before libraries existed (same state-dict keys)
            layers.append(_conv(nxt, 1, 1, config.spectral_norm))
            self.body = nn.Sequential(*layers)
            return
        self.features = nn.Sequential(*layers)
        self.logits = _conv(nxt, 1, 1, config.spectral_norm)
        self.style_embedding = nn.Parameter(torch.zeros(config.num_styles, nxt))

    def forward(self, x: torch.Tensor, styles: torch.Tensor | None = None) -> torch.Tensor:
        if not hasattr(self, "features"):
            return self.body(x)
        h = self.features(x)
        # the 4×4 logit convolution (padding 1) gives one logit per 2×2 window of h
        embedding = self.style_embedding[styles][:, :, None, None]
        projection = (F.avg_pool2d(h, 2, stride=1) * embedding).sum(1, keepdim=True)
        return self.logits(h) + projection


class PatchDiscriminator(nn.Module):
    """images (B, 3, H, W) in [0, 1] → list of ``num_scales`` logit maps (B, 1, h, w).

    >>> d = PatchDiscriminator(DiscriminatorConfig(base_channels=8, num_layers=2, num_scales=2))
    >>> [tuple(o.shape) for o in d(torch.rand(2, 3, 32, 32))]
    [(2, 1, 6, 6), (2, 1, 2, 2)]
    """

    def __init__(self, config: DiscriminatorConfig | None = None):
        super().__init__()
        self.config = config = config or DiscriminatorConfig()
        self.scales = nn.ModuleList([PatchGAN(config) for _ in range(config.num_scales)])

    def forward(self, images: torch.Tensor, styles: torch.Tensor | None = None) -> list[torch.Tensor]:
        """``styles``: (B,) style indices, required when ``config.num_styles`` > 0."""
        if (styles is None) != (self.config.num_styles == 0):
            raise InputError(f"a discriminator for {self.config.num_styles} styles needs (B,) style indices"
                             if self.config.num_styles else "this discriminator judges one style: no style indices")
        if images.dim() != 4 or images.shape[1] != 3:
            raise InputError(f"discriminator expects images shaped (B, 3, H, W), got {tuple(images.shape)}")
        need = self.config.min_input_size()
        if min(images.shape[-2:]) < need:
            raise InputError(f"discriminator with {self.config.num_layers} layers and {self.config.num_scales} "
                             f"scale(s) needs images of at least {need}×{need} pixels, got "
                             f"{tuple(images.shape[-2:])}; use larger crops or fewer layers/scales")
        x = images * 2.0 - 1.0  # centre the input: [0, 1] → [-1, 1]
        outputs = []
        for i, scale in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)
            outputs.append(scale(x, styles))
        return outputs

    @classmethod
    def from_config_dict(cls, data: dict) -> PatchDiscriminator:
        return cls(config_from_dict(DiscriminatorConfig, data, source="discriminator config"))

    def config_dict(self) -> dict:
        return config_to_dict(self.config)


def discriminator_config(**overrides) -> DiscriminatorConfig:
    """Default :class:`DiscriminatorConfig` with validated overrides."""
    data = {**config_to_dict(DiscriminatorConfig()), **overrides}
    return config_from_dict(DiscriminatorConfig, data, source="discriminator config")

