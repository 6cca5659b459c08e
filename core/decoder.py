"""The VGG encoder–decoder model: any painting in one pass, no training per painting.

A frozen VGG is the encoder. At each level (coarse to fine, e.g. relu3_1 → relu2_1 → relu1_1) the
picture is encoded, its features are fused with the painting's statistics at that layer
(:mod:`ganstyle.core.fusion`: WCT or AdaIN) and a decoder trained to invert that layer turns them
back into a picture, which the next, finer level refines (Li et al. 2017, multi-level WCT).

The decoders mirror the VGG up to their layer: reflection padding, 3×3 convolutions with ReLU,
nearest-neighbour upsampling followed by a convolution where the VGG pools (no transposed
convolutions, so no checkerboard). The last full-resolution convolution has ``full_channels``
(fewer than VGG's 64: it is the most expensive layer of the decoder).

Settings live in :class:`EncoderDecoderConfig` (``config.json``); ``model.safetensors`` holds the
encoder's convolutions (``encoder.features.N.*``, torchvision's layout) and every decoder
(``decoders.<level>.*``), so a shipped model runs with nothing else to download. The painting's
statistics come from Style Features measured with the encoder named by ``style_encoder``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from .config import bounded, load_config, save_config
from .errors import ConfigError
from .fusion import MODEL_FUSIONS
from .io import load_module_weights, save_safetensors_atomic
from .vgg import VGG_BLOCKS, VGGEncoder, layer_names, vgg_layers

# The layers a decoder can invert: the first ReLU of each block (where WCT/AdaIN fuse).
DECODER_LEVELS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass
class EncoderDecoderConfig:
    arch: str = bounded("vgg16", choices=tuple(VGG_BLOCKS), doc="the VGG the decoders invert")
    levels: tuple[str, ...] = bounded(("relu3_1", "relu2_1", "relu1_1"),
                                      doc="layers fused and decoded, coarse to fine (each one a decoder)")
    fusion: str = bounded("wct", choices=MODEL_FUSIONS, doc="how content features take the painting's statistics: "
                          "wct, adain, or hybrid (adain at the coarsest level, which keeps the photo's light and "
                          "dark layout, wct at the finer ones)")
    full_channels: int = bounded(32, 4, 64, doc="channels of the decoders' last full-resolution convolution")
    style_encoder: str = bounded("", doc="identity of the encoder whose Style Features this model reads "
                                         "('<arch>:<fingerprint>'); the shipped encoder weights are the same")
    preset: str = bounded("vgg-decoder", doc="name of the preset this config came from (informational)")

    def __post_init__(self):
        self.levels = tuple(self.levels)   # config.json gives a list

    def validate(self) -> None:
        if not self.levels:
            raise ValueError("levels: give at least one layer to decode")
        bad = [lv for lv in self.levels if lv not in DECODER_LEVELS]
        if bad:
            raise ValueError(f"levels {bad} cannot be decoded; choose from {list(DECODER_LEVELS)}")
        order = [DECODER_LEVELS.index(lv) for lv in self.levels]
        if order != sorted(order, reverse=True) or len(set(order)) != len(order):
            raise ValueError(f"levels must be distinct and run coarse to fine (deepest first), got {list(self.levels)}")

    @property
    def deepest(self) -> str:
        return self.levels[0]

    def fusion_at(self, level: str) -> str:
        """The closed-form fusion (:data:`~ganstyle.core.fusion.FUSIONS`) used at ``level``."""
        if self.fusion == "hybrid":
            return "adain" if level == self.levels[0] else "wct"
        return self.fusion


def _decoder_layers(arch: str, level: str, full_channels: int) -> list[nn.Module]:
    """The mirror of ``arch`` up to ``level``: one conv per VGG conv after the first (in reverse),
    an upsampling where VGG pools, then a 3-channel output conv."""
    layers = vgg_layers(arch)
    upto = layers[: layer_names(arch).index(level) + 1]
    modules: list[nn.Module] = []
    convs = [lyr for lyr in upto if lyr.kind in ("conv", "pool")][::-1]
    for lyr in convs:
        if lyr.kind == "pool":
            modules.append(nn.Upsample(scale_factor=2, mode="nearest"))
            continue
        if lyr.name == "conv1_1":
            continue
        out = lyr.in_channels if lyr.name != "conv1_2" else full_channels
        modules += [nn.ReflectionPad2d(1), nn.Conv2d(lyr.out_channels, out, 3), nn.ReLU()]
    last_in = modules[-2].out_channels if modules else 64
    modules += [nn.ReflectionPad2d(1), nn.Conv2d(last_in, 3, 3)]
    return modules


class LevelDecoder(nn.Sequential):
    """Inverts one VGG layer: (B, C, H/s, W/s) features → (B, 3, H, W) RGB (unclamped; about [0, 1]).

    >>> d = LevelDecoder("vgg16", "relu2_1", 32)
    >>> tuple(d(torch.rand(1, 128, 8, 8)).shape)
    (1, 3, 16, 16)
    """

    def __init__(self, arch: str, level: str, full_channels: int):
        super().__init__(*_decoder_layers(arch, level, full_channels))
        self.level = level
        # VGG features are large (relu2_1's reach tens): training sets this to bring them to unit
        # size, so the convolutions keep ordinary weights that Adam's fixed-size steps suit
        self.register_buffer("input_scale", torch.ones(()))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return super().forward(features * self.input_scale.to(features.dtype))

    def receptive_radius(self) -> int:
        """Output pixels a feature influences on each side, plus the upsamplings (for tile halos)."""
        radius, scale = 0, 2 ** sum(isinstance(m, nn.Upsample) for m in self)
        for m in self:
            if isinstance(m, nn.Upsample):
                scale //= 2
            elif isinstance(m, nn.Conv2d):
                radius += scale * (m.kernel_size[0] // 2)
        return radius


class EncoderDecoder(nn.Module):
    """Frozen VGG encoder (up to the deepest level) + one :class:`LevelDecoder` per level.

    >>> model = EncoderDecoder(EncoderDecoderConfig(levels=("relu2_1", "relu1_1")))
    >>> tuple(model.reconstruct(torch.rand(1, 3, 32, 32), "relu2_1").shape)
    (1, 3, 32, 32)
    """

    def __init__(self, config: EncoderDecoderConfig, encoder: VGGEncoder | None = None):
        super().__init__()
        config.validate()
        self.config = config
        self.encoder = encoder if encoder is not None else VGGEncoder(config.arch, config.deepest)
        if self.encoder.arch != config.arch or self.encoder.deepest != config.deepest:
            raise ConfigError(f"the encoder is {self.encoder.arch} up to {self.encoder.deepest}; this model needs "
                              f"{config.arch} up to {config.deepest}")
        self.decoders = nn.ModuleDict({lv: LevelDecoder(config.arch, lv, config.full_channels)
                                       for lv in config.levels})

    @property
    def levels(self) -> tuple[str, ...]:
        return self.config.levels

    def reconstruct(self, images: torch.Tensor, level: str) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] → the decoder's reconstruction from ``level`` (unclamped)."""
        return self.decoders[level](self.encoder(images, [level])[level])

    def decoder_parameters(self) -> list[nn.Parameter]:
        return [p for d in self.decoders.values() for p in d.parameters()]

    def receptive_radius(self, level: str) -> int:
        """Input pixels on each side that influence an output pixel of one level's encode–decode."""
        encoder_radius, scale = 0, 1
        for lyr in self.encoder.layers[: self.encoder.layer_names.index(level) + 1]:
            if lyr.kind == "conv":
                encoder_radius += scale
            elif lyr.kind == "pool":
                encoder_radius += scale
                scale *= 2
        return encoder_radius + self.decoders[level].receptive_radius()

    # -- files ----------------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path, *, dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (encoder + decoders) atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: (v.to(dtype) if dtype is not None else v) for k, v in self.state_dict().items()}
        save_safetensors_atomic(state, folder / "model.safetensors",
                                metadata={"format": "pt", "class": "EncoderDecoder"})
        save_config(self.config, folder)
        return folder

    @classmethod
    def from_files(cls, weights_path: str | Path, config_path: str | Path, *,
                   device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> EncoderDecoder:
        """Strict load: every tensor present with its shape, no extra key, nothing executed."""
        weights_path, config_path = Path(weights_path), Path(config_path)
        config = load_config(EncoderDecoderConfig, config_path)
        model = cls(config)
        # files written before decoders had an input scale: their scale is 1 (it was not there)
        load_module_weights(model, weights_path, str(config_path),
                            {f"decoders.{lv}.input_scale": torch.ones(()) for lv in config.levels})
        model.encoder.identity = config.style_encoder or model.encoder.identity
        return model.to(device=device, dtype=dtype).eval().requires_grad_(False)

    @classmethod
    def from_pretrained(cls, folder: str | Path, **kwargs) -> EncoderDecoder:
        folder = Path(folder)
        return cls.from_files(folder / "model.safetensors", folder / "config.json", **kwargs)


def new_encoder_decoder(encoder: VGGEncoder, levels: Sequence[str] = ("relu3_1", "relu2_1", "relu1_1"),
                        **settings) -> EncoderDecoder:
    """A model with fresh decoders over a loaded encoder (cut to the deepest level), for training."""
    config = EncoderDecoderConfig(arch=encoder.arch, levels=tuple(levels), style_encoder=encoder.identity, **settings)
    config.validate()
    cut = VGGEncoder(encoder.arch, config.deepest, identity=encoder.identity, source=encoder.source)
    own = {k: v for k, v in encoder.state_dict().items() if k in cut.state_dict()}
    cut.load_state_dict(own, strict=True)
    return EncoderDecoder(config, cut.to(encoder.device))


def combine_models(*models: EncoderDecoder) -> EncoderDecoder:
    """One model with the levels of several trained on the same encoder (e.g. a relu3_1 decoder and
    relu2_1/relu1_1 decoders trained in separate runs), coarse to fine; a level in several models is
    taken from the first. The encoder is the one of the model with the deepest level."""
    if not models:
        raise ConfigError("combine_models: no models given")
    identities = {m.config.style_encoder for m in models}
    if len(identities) != 1:
        raise ConfigError(f"combine_models: the models read different encoders {sorted(identities)}")
    levels = sorted({lv for m in models for lv in m.levels}, key=DECODER_LEVELS.index, reverse=True)
    deepest = next(m for m in models if levels[0] in m.levels)
    config = EncoderDecoderConfig(**{**deepest.config.__dict__, "levels": tuple(levels)})
    combined = EncoderDecoder(config, deepest.encoder)
    for level in levels:
        source = next(m for m in models if level in m.levels)
        combined.decoders[level].load_state_dict(source.decoders[level].state_dict(), strict=True)
    return combined

