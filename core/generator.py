"""Feed-forward style generator: encoder → residual blocks → decoder, output RGB in [0, 1].

Reflection padding, instance norm, and resize-then-convolve upsampling (no transposed
convolutions, hence no checkerboard artefacts). All settings live in :class:`GeneratorConfig`,
saved as ``config.json`` beside ``model.safetensors`` (:meth:`StyleGenerator.save_pretrained`).

Presets: ``"johnson"`` (Johnson et al. 2016, with instance norm as in Ulyanov et al.) and
``"fast"`` (our own, built for the inference speed goals: early downsampling, thin channels).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import bounded, config_from_dict, config_to_dict, load_config, save_config
from .errors import WeightsError
from .io import load_safetensors_checked, save_safetensors_atomic


@dataclass
class GeneratorConfig:
    base_channels: int = bounded(32, 1, 512, doc="channels after the first convolution")
    max_channels: int = bounded(128, 1, 1024, doc="cap on channels as resolution halves")
    num_downsamples: int = bounded(2, 0, 5, doc="stride-2 convolutions in the encoder")
    num_residual_blocks: int = bounded(5, 0, 64, doc="residual blocks at the lowest resolution")
    first_kernel: int = bounded(9, 1, 15, doc="kernel size of the first convolution (odd)")
    last_kernel: int = bounded(9, 1, 15, doc="kernel size of the last convolution (odd)")
    norm: str = bounded("instance", choices=("instance", "none"), doc="normalisation layer")
    upsample_mode: str = bounded("nearest", choices=("nearest", "bilinear"), doc="resize mode in the decoder")
    preset: str = bounded("custom", doc="name of the preset this config came from (informational)")

    def validate(self) -> None:
        for name in ("first_kernel", "last_kernel"):
            if getattr(self, name) % 2 == 0:
                raise ValueError(f"field '{name}' must be odd, got {getattr(self, name)}")

    @property
    def stride(self) -> int:
        """Input height/width should be a multiple of this (other sizes are padded)."""
        return 2 ** self.num_downsamples


PRESETS: dict[str, GeneratorConfig] = {
    "johnson": GeneratorConfig(32, 128, 2, 5, 9, 9, "instance", "nearest", "johnson"),
    "fast": GeneratorConfig(16, 64, 3, 4, 3, 3, "instance", "nearest", "fast"),
}


def preset_config(name: str) -> GeneratorConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown generator preset '{name}', expected one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name])


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True) if kind == "instance" else nn.Identity()


class ConvLayer(nn.Sequential):
    """Reflection pad → conv → norm → ReLU (the last two optional)."""

    def __init__(self, cin, cout, kernel, stride=1, norm="instance", relu=True):
        layers = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride)]
        if norm != "none":
            layers.append(_norm(norm, cout))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(ConvLayer(channels, channels, 3, norm=norm),
                                  ConvLayer(channels, channels, 3, norm=norm, relu=False))

    def forward(self, x):
        return x + self.body(x)


class UpsampleConv(nn.Module):
    """Resize ×2 then convolve (Odena et al. 2016: avoids checkerboard artefacts)."""

    def __init__(self, cin, cout, norm, mode):
        super().__init__()
        self.mode = mode
        self.conv = ConvLayer(cin, cout, 3, norm=norm)

    def forward(self, x, size):
        kw = {} if self.mode == "nearest" else {"align_corners": False}
        return self.conv(F.interpolate(x, size=size, mode=self.mode, **kw))


class StyleGenerator(nn.Module):
    """images (B, 3, H, W) in [0, 1] → stylised (B, 3, H, W) in [0, 1]. Any H, W ≥ 1 (inputs are
    reflection-padded to a multiple of ``config.stride`` and cropped back).

    >>> g = StyleGenerator(GeneratorConfig(4, 8, 1, 1, 3, 3))
    >>> tuple(g(torch.rand(2, 3, 10, 13)).shape)
    (2, 3, 10, 13)
    """

    def __init__(self, config: GeneratorConfig | None = None):
        super().__init__()
        self.config = config = config or preset_config("johnson")
        c = config.base_channels
        self.head = ConvLayer(3, c, config.first_kernel, norm=config.norm)
        downs, widths = [], [c]
        for _ in range(config.num_downsamples):
            nxt = min(c * 2, config.max_channels)
            downs.append(ConvLayer(c, nxt, 3, stride=2, norm=config.norm))
            c = nxt
            widths.append(c)
        self.down = nn.ModuleList(downs)
        self.res = nn.Sequential(*[ResidualBlock(c, config.norm) for _ in range(config.num_residual_blocks)])
        ups = []
        for i in range(config.num_downsamples):
            nxt = widths[-2 - i]
            ups.append(UpsampleConv(c, nxt, config.norm, config.upsample_mode))
            c = nxt
        self.up = nn.ModuleList(ups)
        self.tail = ConvLayer(c, 3, config.last_kernel, norm="none", relu=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        s = self.config.stride
        # Pad to a multiple of the stride, and to at least 2 pixels at the lowest resolution
        # (instance norm and reflection padding need more than one spatial element).
        min_size = max(2 * s, self.config.first_kernel // 2 + 1, self.config.last_kernel // 2 + 1)
        ph = max(min_size - h, (-h) % s)
        pw = max(min_size - w, (-w) % s)
        ph, pw = ph + (-(h + ph)) % s, pw + (-(w + pw)) % s
        x = images
        if ph or pw:
            # reflection padding needs pad < size; fall back to replicate for tiny inputs
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        sizes = [x.shape[-2:]]
        x = self.head(x)
        for layer in self.down:
            x = layer(x)
            sizes.append(x.shape[-2:])
        x = self.res(x)
        for i, layer in enumerate(self.up):
            x = layer(x, sizes[-2 - i])
        x = torch.sigmoid(self.tail(x))
        return x[..., :h, :w]

    # ---- diffusers-style persistence -------------------------------------------------------
    def save_pretrained(self, folder: str | Path, *, dtype: torch.dtype | None = None,
                        metadata: dict[str, str] | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (atomically) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v)
                 for k, v in self.state_dict().items()}
        save_safetensors_atomic(state, folder / "model.safetensors",
                                metadata={"format": "pt", "class": "StyleGenerator", **(metadata or {})})
        save_config(self.config, folder)
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path, *, device: torch.device | str = "cpu",
                        dtype: torch.dtype = torch.float32) -> "StyleGenerator":
        """Load from a folder with ``config.json`` + ``model.safetensors``. Strict: every key
        must be present with the right shape; nothing is executed."""
        folder = Path(folder)
        config = load_config(GeneratorConfig, folder)
        model = cls(config)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        weights_path = folder / "model.safetensors"
        state = load_safetensors_checked(weights_path, list(expected), expected)
        from .io import check_safetensors_file
        extra = sorted(set(check_safetensors_file(weights_path)) - set(expected))
        if extra:
            raise WeightsError(f"{weights_path}: unexpected keys {extra[:8]} for the generator described "
                               f"by {folder / 'config.json'} (config and weights do not match)")
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        return model.to(device=device, dtype=dtype).eval().requires_grad_(False)

    @classmethod
    def from_config_dict(cls, data: dict) -> "StyleGenerator":
        return cls(config_from_dict(GeneratorConfig, data))

    def config_dict(self) -> dict:
        return config_to_dict(self.config)
