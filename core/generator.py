"""Feed-forward style generator: encoder → residual blocks → decoder, output RGB in [0, 1].

Reflection padding, instance norm, and resize-then-convolve upsampling (no transposed
convolutions, hence no checkerboard artefacts). All settings live in :class:`GeneratorConfig`,
saved as ``config.json`` beside ``model.safetensors`` (:meth:`StyleGenerator.save_pretrained`).

Presets:

- ``"johnson"``: Johnson et al. 2016 (9×9 head and tail at full resolution, two stride-2
  convolutions, five 128-channel residual blocks at 1/4 resolution), with instance norm as in
  Ulyanov et al. 2016. 161 GMAC per 1024×1024 image.
- ``"fast"``: ours, built for the inference speed goals. A lossless 2× pixel-unshuffle replaces the
  full-resolution head and a pixel-shuffle the full-resolution tail (``pixel_shuffle=True``), so
  no convolution runs at full resolution; channels 24 → 48 → 96 at 1/2 → 1/4 → 1/8; five residual
  blocks at 1/8 resolution (receptive field ≈ 200 px, enough for painterly strokes). 22 GMAC per
  1024×1024 image and no full-resolution feature maps, several times faster than ``"johnson"``
  (docs/benchmarks.md, ``bench/bench_stylize.py``).

Instance norm is :class:`~ganstyle.core.norm_statistics.InstanceNorm2d`, whose statistics can be
recorded and replayed so that tiles equal the untiled result (:mod:`ganstyle.core.norm_statistics`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import bounded, config_from_dict, config_to_dict, load_config, save_config
from .io import load_module_weights, save_safetensors_atomic
from .norm_statistics import (
    ConditionalInstanceNorm2d,
    InstanceNorm2d,
    NormStatistics,
    StatisticsGathered,
    StyleCondition,
    style_condition,
)

__all__ = ["PRESETS", "GeneratorConfig", "InstanceNorm2d", "NormStatistics", "StatisticsGathered",
           "StyleGenerator", "preset_config"]


OUTPUT_HEADS = ("pixel_shuffle", "upsample")
# What a style library records about each style (config.json); only "name" is required.
STYLE_INFO_KEYS = ("name", "source", "licence", "author")
# Channels the "upsample" output head resizes to full resolution (few: it is the only full-size tensor).
_HEAD_CHANNELS = 8


@dataclass
class GeneratorConfig:
    base_channels: int = bounded(32, 1, 512, doc="channels after the first convolution")
    max_channels: int = bounded(128, 1, 1024, doc="cap on channels as resolution halves")
    num_downsamples: int = bounded(2, 0, 5, doc="resolution halvings in the encoder (stride-2 convolutions, "
                                                "the first one a pixel-unshuffle when pixel_shuffle is true)")
    num_residual_blocks: int = bounded(5, 0, 64, doc="residual blocks at the lowest resolution")
    first_kernel: int = bounded(9, 1, 15, doc="kernel size of the first convolution (odd)")
    last_kernel: int = bounded(9, 1, 15, doc="kernel size of the last convolution (odd)")
    norm: str = bounded("instance", choices=("instance", "none"), doc="normalisation layer")
    upsample_mode: str = bounded("nearest", choices=("nearest", "bilinear"), doc="resize mode in the decoder")
    preset: str = bounded("custom", doc="name of the preset this config came from (informational)")
    pixel_shuffle: bool = bounded(False, doc="lossless 2x pixel-unshuffle at the input, so the network body "
                                             "starts at half resolution (see output_head for the way back)")
    output_head: str = bounded("upsample", choices=OUTPUT_HEADS, legacy="pixel_shuffle",
                               doc="with pixel_shuffle, how the output returns to full resolution: "
                                   "'pixel_shuffle' (a sub-pixel convolution at half resolution: cheapest, "
                                   "but free to draw a 2-pixel grid) or 'upsample' (8 channels at half "
                                   "resolution, resized bilinearly, then one convolution at full resolution: no "
                                   "grid, ~10 % more time)")
    styles: tuple[dict, ...] = bounded((), legacy=(),
                                       doc="empty: a single-style model. Otherwise a style library: one entry "
                                           "per style ({'name', 'source', 'licence', 'author'}; name required "
                                           "and unique), each with its own norm scale/shift (conditional "
                                           "instance norm) over shared convolutions")
    style_embedding: int = bounded(0, 0, 1024, legacy=0,
                                   doc="0: fixed styles. Otherwise an arbitrary-style generator: its norm scales and "
                                       "shifts are linear in a style embedding of this size, predicted from the "
                                       "style image's VGG statistics (Ghiasi et al. 2017; core/style_predictor.py)")
    predictor_hidden: int = bounded(256, 1, 8192, legacy=256,
                                    doc="hidden width of the style predictor (arbitrary-style generators)")
    style_encoder: str = bounded("", legacy="",
                                 doc="identity of the VGG encoder whose style features the predictor reads "
                                     "(features from another encoder are refused)")

    def __post_init__(self):
        self.styles = tuple(dict(entry) if isinstance(entry, dict) else entry for entry in self.styles)

    def validate(self) -> None:
        for name in ("first_kernel", "last_kernel"):
            if getattr(self, name) % 2 == 0:
                raise ValueError(f"field '{name}' must be odd, got {getattr(self, name)}")
        names = []
        for i, entry in enumerate(self.styles):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
                raise ValueError(f"field 'styles' entry {i} must be an object with a non-empty 'name', got {entry!r}")
            unknown = sorted(set(entry) - set(STYLE_INFO_KEYS))
            if unknown or not all(isinstance(v, str) for v in entry.values()):
                raise ValueError(f"field 'styles' entry {i} ('{entry['name']}'): keys must be "
                                 f"{list(STYLE_INFO_KEYS)} with string values, got {entry!r}")
            names.append(entry["name"])
        if len(set(names)) != len(names):
            repeated = sorted(n for n in set(names) if names.count(n) > 1)
            raise ValueError(f"field 'styles' has duplicate names: {repeated}")
        if self.styles and self.style_embedding:
            raise ValueError("fields 'styles' and 'style_embedding' exclude each other: a model is a library of "
                             "named styles or an arbitrary-style model")
        if self.style_embedding and self.norm != "instance":
            raise ValueError("an arbitrary-style generator (field 'style_embedding') needs norm 'instance'")
        if self.styles and self.norm != "instance":
            raise ValueError("a style library (field 'styles') needs norm 'instance' (styles live in its parameters)")
        if self.pixel_shuffle and self.num_downsamples < 1:
            raise ValueError("field 'pixel_shuffle' is true but 'num_downsamples' is 0 "
                             "(the pixel-unshuffle is the first downsampling)")

    @property
    def num_styles(self) -> int:
        """0 for a single-style model, else the number of styles in the library."""
        return len(self.styles)

    @property
    def norm_rows(self) -> int:
        """Rows of each norm table: one per named style, D + 1 for an arbitrary-style model, else 0 (plain)."""
        return self.num_styles or (self.style_embedding + 1 if self.style_embedding else 0)

    @property
    def stride(self) -> int:
        """Input height/width should be a multiple of this (other sizes are padded)."""
        return 2 ** self.num_downsamples


PRESETS: dict[str, GeneratorConfig] = {
    "johnson": GeneratorConfig(32, 128, 2, 5, 9, 9, "instance", "nearest", "johnson", False),
    "fast": GeneratorConfig(24, 96, 3, 5, 3, 3, "instance", "bilinear", "fast", True, "upsample"),
}


def preset_config(name: str) -> GeneratorConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown generator preset '{name}', expected one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name])


def _norm(kind: str, channels: int, num_styles: int = 0) -> nn.Module:
    if kind != "instance":
        return nn.Identity()
    return ConditionalInstanceNorm2d(channels, num_styles) if num_styles else InstanceNorm2d(channels)


class ConvLayer(nn.Sequential):
    """Reflection pad → conv → norm → ReLU (the last two optional)."""

    def __init__(self, cin, cout, kernel, stride=1, norm="instance", relu=True, num_styles=0):
        layers = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride)]
        if norm != "none":
            layers.append(_norm(norm, cout, num_styles))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str, num_styles: int = 0):
        super().__init__()
        self.body = nn.Sequential(ConvLayer(channels, channels, 3, norm=norm, num_styles=num_styles),
                                  ConvLayer(channels, channels, 3, norm=norm, relu=False, num_styles=num_styles))

    def forward(self, x):
        return x + self.body(x)


class UpsampleConv(nn.Module):
    """Resize ×2 then convolve (Odena et al. 2016: avoids checkerboard artefacts)."""

    def __init__(self, cin, cout, norm, mode, num_styles=0):
        super().__init__()
        self.mode = mode
        self.conv = ConvLayer(cin, cout, 3, norm=norm, num_styles=num_styles)

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
        shuffle = config.pixel_shuffle
        # With pixel_shuffle the first halving is the lossless unshuffle (3 → 12 channels).
        strided = config.num_downsamples - (1 if shuffle else 0)
        io_channels = 12 if shuffle else 3
        c, styles = config.base_channels, config.norm_rows
        self.head = ConvLayer(io_channels, c, config.first_kernel, norm=config.norm, num_styles=styles)
        downs, widths = [], [c]
        for _ in range(strided):
            nxt = min(c * 2, config.max_channels)
            downs.append(ConvLayer(c, nxt, 3, stride=2, norm=config.norm, num_styles=styles))
            c = nxt
            widths.append(c)
        self.down = nn.ModuleList(downs)
        self.res = nn.Sequential(*[ResidualBlock(c, config.norm, styles) for _ in range(config.num_residual_blocks)])
        ups = []
        for i in range(strided):
            nxt = widths[-2 - i]
            ups.append(UpsampleConv(c, nxt, config.norm, config.upsample_mode, styles))
            c = nxt
        self.up = nn.ModuleList(ups)
        self.upsample_output = shuffle and config.output_head == "upsample"
        if self.upsample_output:
            self.tail = nn.Sequential(ConvLayer(c, _HEAD_CHANNELS, 3, norm="none"),                 # half resolution
                                      nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                      ConvLayer(_HEAD_CHANNELS, 3, config.last_kernel, norm="none", relu=False))
        else:
            self.tail = ConvLayer(c, io_channels, config.last_kernel, norm="none", relu=False)
            if shuffle:
                self._icnr_init(self.tail[1])
        if config.style_embedding:
            from .style_predictor import StylePredictor
            self.predictor = StylePredictor(config.style_embedding, config.predictor_hidden)

    @staticmethod
    def _icnr_init(conv: nn.Conv2d) -> None:
        """ICNR (Aitken et al. 2017): the four sub-pixel outputs of each colour start identical, so
        the pixel-shuffle begins as a nearest-neighbour upsampling and no checkerboard appears."""
        with torch.no_grad():
            base = conv.weight[::4].clone()          # (3, C, k, k): one filter per colour
            conv.weight.copy_(base.repeat_interleave(4, dim=0))
            conv.bias.copy_(conv.bias[::4].repeat_interleave(4))

    def forward(self, images: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """images: (B, 3, H, W) in [0, 1]. A style library (``config.styles``) also needs the styles
        to apply: ``style`` (B, S) weights per image (one-hot = one style, a mix = a blend), or S
        more input channels, (B, 3 + S, H, W), holding weights per pixel (regions; soft edges are
        fractional weights). An arbitrary-style generator (``config.style_embedding``) needs ``style``
        (B, STYLE_VECTOR_SIZE): each image's style vector (:func:`~ganstyle.core.style_predictor.style_vector`).
        Returns (B, 3, H, W) in [0, 1]."""
        if self.config.style_embedding:
            if style is None or style.dim() != 2 or style.shape[0] != images.shape[0] or images.shape[1] != 3:
                raise ValueError(f"an arbitrary-style generator takes (B, 3, H, W) images and (B, F) style vectors "
                                 f"(from style features: Style Features → GAN Stylize, --style-image), got "
                                 f"{tuple(images.shape)}" + (f" and {tuple(style.shape)}" if style is not None else
                                                            " and no style"))
            return self._forward(images, StyleCondition(weights=self.predictor(style)))
        styles = self.config.num_styles
        if not styles:
            if style is not None or images.shape[1] != 3:
                raise ValueError(f"a single-style generator takes (B, 3, H, W) images and no style, got "
                                 f"{tuple(images.shape)}" + (" and a style" if style is not None else ""))
            return self._forward(images, None)
        if style is not None:
            if images.shape[1] != 3 or style.shape != (images.shape[0], styles):
                raise ValueError(f"a library of {styles} styles takes (B, 3, H, W) images with (B, {styles}) "
                                 f"style weights, got {tuple(images.shape)} and {tuple(style.shape)}")
            return self._forward(images, StyleCondition(weights=style))
        if images.shape[1] != 3 + styles:
            raise ValueError(f"a library of {styles} styles needs style weights: (B, {styles}) as `style`, or "
                             f"(B, 3 + {styles}, H, W) images whose extra channels are per-pixel weights; got "
                             f"{tuple(images.shape)}")
        return self._forward(images, "maps")

    def _forward(self, images: torch.Tensor, condition) -> torch.Tensor:
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
        if condition == "maps":   # per-pixel style weights travel as extra channels (and tile with the image)
            x, maps = x[:, :3], x[:, 3:]
            condition = StyleCondition(maps=maps.float())
        if self.config.pixel_shuffle:
            x = F.pixel_unshuffle(x, 2)
        if condition is None:
            return self._body(x, h, w)
        with style_condition(condition):
            return self._body(x, h, w)

    def _body(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        sizes = [x.shape[-2:]]
        x = self.head(x)
        for layer in self.down:
            x = layer(x)
            sizes.append(x.shape[-2:])
        x = self.res(x)
        for i, layer in enumerate(self.up):
            x = layer(x, sizes[-2 - i])
        x = self.tail(x)
        if self.config.pixel_shuffle and not self.upsample_output:
            x = F.pixel_shuffle(x, 2)
        return torch.sigmoid(x[..., :h, :w])

    # ---- style libraries -------------------------------------------------------------------------
    @property
    def style_names(self) -> list[str]:
        return [entry["name"] for entry in self.config.styles]

    def style_norms(self) -> dict[str, ConditionalInstanceNorm2d]:
        """{module name: conditional norm layer}, in network order (empty for a single-style model)."""
        return {name: m for name, m in self.named_modules() if isinstance(m, ConditionalInstanceNorm2d)}

    def norm_parameter_names(self) -> list[str]:
        """State-dict keys of the norm layers' scales and shifts, in network order: all that differs
        between the styles of a library (a style's tables are (S, C), a single style's (C,))."""
        norms = [name for name, m in self.named_modules() if isinstance(m, InstanceNorm2d)]
        return [f"{name}.{leaf}" for name in norms for leaf in ("weight", "bias")]

    def subset(self, indices: list[int]) -> StyleGenerator:
        """A library of the styles ``indices`` of this one (shared weights copied), in that order:
        a mask over K styles runs with K weight channels, not one per style of the library."""
        config = dataclasses.replace(self.config, styles=tuple(self.config.styles[i] for i in indices))
        return self._derived(config, lambda table: table[indices])

    def mixed(self, weights: torch.Tensor) -> StyleGenerator:
        """The single-style generator of the blend ``weights`` (S,) (instance norm's scale and
        shift are linear in them, so this equals the library run with those weights), as fast
        as any single-style model."""
        if weights.shape != (self.config.num_styles,):
            raise ValueError(f"expected {self.config.num_styles} style weights, got shape {tuple(weights.shape)}")
        config = dataclasses.replace(self.config, styles=())
        w = weights.to(torch.float32)
        return self._derived(config, lambda table: w @ table.float())

    def _derived(self, config: GeneratorConfig, norm_rows) -> StyleGenerator:
        """A generator of ``config`` with this one's weights, each norm table (S, C) mapped by ``norm_rows``."""
        tables = set(self.norm_parameter_names())
        derived = StyleGenerator(config)
        wanted = derived.state_dict().keys()    # an arbitrary-style model's predictor stays behind
        state = {key: norm_rows(value) if key in tables else value for key, value in self.state_dict().items()
                 if key in wanted}
        derived.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
        first = next(self.parameters())
        return derived.to(first.device, first.dtype).train(self.training).requires_grad_(False)

    # ---- arbitrary styles ------------------------------------------------------------------------
    def for_styles(self, vectors: torch.Tensor, names: list[str] | None = None) -> StyleGenerator:
        """An arbitrary-style generator's styles folded into an ordinary generator: ``vectors``
        (K, STYLE_VECTOR_SIZE) style vectors → without ``names`` (K = 1), a single-style generator;
        with K ``names``, a library of those K styles (blends, masks). Runs as fast as any trained style."""
        if not self.config.style_embedding:
            raise ValueError("for_styles needs an arbitrary-style generator (config.style_embedding > 0)")
        if vectors.dim() != 2 or (names is None and vectors.shape[0] != 1) or (names and len(names) != len(vectors)):
            raise ValueError(f"expected (1, F) style vectors, or (K, F) with K names; got {tuple(vectors.shape)} and "
                             f"{names!r}")
        with torch.no_grad():
            rows = self.predictor(vectors.to(next(self.parameters()).device)).float()     # (K, D + 1)
        styles = tuple({"name": n} for n in names) if names else ()
        config = dataclasses.replace(self.config, styles=styles, style_embedding=0, style_encoder="")
        return self._derived(config, lambda table: (rows @ table.float())[0] if not names else rows @ table.float())

    @classmethod
    def arbitrary_from(cls, generator: StyleGenerator, embedding: int, hidden: int = 256,
                       encoder: str = "") -> StyleGenerator:
        """An arbitrary-style generator with ``generator``'s convolutions. Every norm table's last
        row (the one an untrained predictor selects) is its mean style; a library's styles also fill
        the first rows, as offsets from that mean, so their looks are directions the predictor can
        reach from the start. The other rows start small and random: were they zero, they and the
        embedding's matching entries would get no gradient from each other and never train."""
        if generator.config.style_embedding:
            raise ValueError("arbitrary_from takes a single-style generator or a style library")
        styles = generator.config.num_styles
        if styles > embedding:
            raise ValueError(f"a style embedding of {embedding} cannot hold the library's {styles} styles")
        config = dataclasses.replace(generator.config, styles=(), style_embedding=embedding, predictor_hidden=hidden,
                                     style_encoder=encoder)
        model = cls(config)
        tables = set(generator.norm_parameter_names())
        state = model.state_dict()
        rng = torch.Generator().manual_seed(0)
        for key, value in generator.state_dict().items():
            value = value.float()
            if key not in tables:
                state[key] = value
                continue
            # ~1 % of the mean style's size: breaks the symmetry without changing the start's look
            scale = 0.01 * value.abs().mean()
            table = torch.randn(embedding + 1, value.shape[-1], generator=rng) * scale
            if styles:
                mean = value.mean(0)
                table[:styles] = value - mean
                table[-1] = mean
            else:
                table[-1] = value
            state[key] = table
        model.load_state_dict(state)
        return model

    @classmethod
    def library_from(cls, generator: StyleGenerator, styles: list[dict]) -> StyleGenerator:
        """A style library with ``generator``'s convolutions whose every style starts from its norm
        parameters (a single-style model, e.g. a base generator, as the start of library training)."""
        if generator.config.norm_rows:
            raise ValueError("library_from takes a single-style generator")
        config = dataclasses.replace(generator.config, styles=tuple(dict(s) for s in styles))
        library = cls(config)
        tables = set(generator.norm_parameter_names())
        library.load_state_dict({key: value.float().expand(len(styles), -1).clone() if key in tables else value.float()
                                 for key, value in generator.state_dict().items()})
        return library

    # ---- geometry, used by tiled inference ------------------------------------------------------
    def receptive_radius(self) -> int:
        """How far (in input pixels) an output pixel can see, with norm statistics frozen: a tile
        whose margin is at least this wide computes its centre exactly as the whole image would."""
        cfg = self.config
        jump, radius = 1.0, 0.0
        if cfg.pixel_shuffle:
            radius, jump = 1.0, 2.0  # a 2×2 block
        radius += (cfg.first_kernel // 2) * jump
        for _ in self.down:
            radius += jump
            jump *= 2
        radius += 2 * len(self.res) * jump
        for _ in self.up:
            jump /= 2
            radius += jump if cfg.upsample_mode == "nearest" else 2 * jump  # resize footprint
            radius += jump                                                  # 3×3 convolution
        if self.upsample_output:
            radius += 2 * jump                                # 3×3 convolution and bilinear x2, at half resolution
            radius += cfg.last_kernel // 2                    # the convolution at full resolution
        else:
            radius += (cfg.last_kernel // 2) * jump
            if cfg.pixel_shuffle:
                radius += 1
        return int(math.ceil(radius))

    def activation_bytes_per_pixel(self, dtype: torch.dtype = torch.float32) -> int:
        """Rough peak bytes of activations per input pixel for one inference forward pass, used to
        pick tile sizes: the largest set of tensors alive at once (a layer's input, its padded copy
        and its output), in channels per full-resolution pixel, plus the input and output images."""
        cfg = self.config
        area = 0.25 if cfg.pixel_shuffle else 1.0     # pixels per input pixel at the current stage
        c_io = 12 if cfg.pixel_shuffle else 3
        c, widths = cfg.base_channels, [cfg.base_channels]
        peak = (2 * c_io + c) * area                   # head: input, padded input, output
        for _ in self.down:
            nxt = min(c * 2, cfg.max_channels)
            peak = max(peak, (2 * c + nxt / 4) * area)
            c, area = nxt, area / 4
            widths.append(c)
        if len(self.res):
            peak = max(peak, 4 * c * area)            # x, padded, hidden, x + body(x)
        for i in range(len(self.up)):
            nxt = widths[-2 - i]
            peak = max(peak, (c + 8 * c + 4 * nxt) * area)  # input, resized, padded, output
            c, area = nxt, area * 4
        if self.upsample_output:   # half resolution: input, padded, output; full: resized, padded, output
            peak = max(peak, (2 * c + _HEAD_CHANNELS) * area, 2 * _HEAD_CHANNELS + 3)
        else:
            peak = max(peak, (2 * c + c_io) * area)
        elem = torch.finfo(dtype).bits // 8
        regions = 0
        if cfg.num_styles:   # per-pixel style weights (float32) and, in the first norm layer, scale/shift maps
            regions = 4 * (cfg.num_styles + 2 * cfg.base_channels * (0.25 if cfg.pixel_shuffle else 1.0))
        return int(math.ceil((peak + 6) * elem + regions))       # + the input and output images

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
                        dtype: torch.dtype = torch.float32) -> StyleGenerator:
        """Load from a folder with ``config.json`` + ``model.safetensors``. Strict: every key
        must be present with the right shape; nothing is executed."""
        folder = Path(folder)
        return cls.from_files(folder / "model.safetensors", folder / "config.json", device=device, dtype=dtype)

    @classmethod
    def from_files(cls, weights_path: str | Path, config_path: str | Path, *,
                   device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> StyleGenerator:
        """Load from an explicit safetensors file and ``config.json`` (e.g. ``mystyle.safetensors`` +
        ``mystyle.json`` in ComfyUI's ``models/style_transfer``). Same strict checks."""
        weights_path, config_path = Path(weights_path), Path(config_path)
        config = load_config(GeneratorConfig, config_path)
        model = cls(config)
        load_module_weights(model, weights_path, str(config_path))
        return model.to(device=device, dtype=dtype).eval().requires_grad_(False)

    @classmethod
    def from_config_dict(cls, data: dict) -> StyleGenerator:
        return cls(config_from_dict(GeneratorConfig, data))

    def config_dict(self) -> dict:
        return config_to_dict(self.config)
