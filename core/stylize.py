"""The inference engine: a trained style model over a batch of images of any size.

:func:`stylize` runs one forward pass of a :class:`~ganstyle.core.generator.StyleGenerator` per
image (or per batch of small images), on any device and in fp32/fp16/bf16, then blends with the
input (``strength``) and optionally keeps the input's colours (``color_mode``).

Images too large for the memory budget are processed in tiles, and tiles must not show seams.
Instance norm is the obstacle: it normalises with statistics of whatever it sees, so a naive tile
is normalised differently from its neighbours. The engine therefore runs in two passes:

1. **statistics**: the network runs once on the whole image with
   :class:`~ganstyle.core.generator.NormStatistics` recording every norm layer's per-channel
   mean/variance. When the whole image does not fit the memory budget, the statistics are
   gathered over the tiles instead, one norm layer per round (each round runs every tile up to
   the first layer still without statistics, the earlier ones frozen at their exact values, and
   pools the mean/variance of the part each tile owns): exact, at the cost of one partial pass
   over the tiles per norm layer. ``tile_statistics="thumbnail"`` takes them in one pass over a
   downscaled copy instead ("thumbnail instance normalisation", Chen et al. 2022): faster, but
   approximate, and far off for pixel-shuffle models (docs/benchmarks.md);
2. **tiles**: each tile runs with those statistics frozen. Every layer is then local, so a tile
   with a margin (halo) wider than the network's receptive field computes its centre exactly as
   the whole image would. Neighbouring tiles overlap by ``overlap`` pixels and are blended with
   feathered (linear ramp) weights, which hides the last floating-point differences.

With exact statistics, tiled output equals untiled output to float precision.

Memory: the budget (``max_memory`` bytes, default: a fraction of free device memory) decides how
many images run at once, whether to tile, and the tile size. On ``torch.OutOfMemoryError`` the
tile side is halved and the work retried, down to a minimum tile.

No state lives in the model: the statistics travel in a context variable and a device/dtype copy
of the model is made when needed, so concurrent calls with one model are safe.

Device/dtype copies of the model and the CUDA graphs replayed for repeated whole-image shapes
(a small network at batch 1 is bound by kernel launches) live in :mod:`ganstyle.core.model_copies`.

:class:`StylizeOptions` declares the user-facing settings once; the GAN Stylize node and the
``ganstyle stylize`` command build their inputs from it and hand it to :func:`stylize` whole, which
checks it (:meth:`StylizeOptions.checked`).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .color import COLOR_MODES, apply_color_mode, match_palette
from .config import OptionError, bounded, brace_escaped, check_options
from .decoder import EncoderDecoder
from .device import PRECISIONS, memory_budget, resolve_device, resolve_dtype
from .engine import TiledEngine
from .errors import InputError
from .features import StyleFeatures
from .generator import StyleGenerator
from .model_copies import prepare_model
from .style_choice import StyleSpec, conditioned, region_shares

ProgressCallback = Callable[[int, int], None]
TileOption = str | int | None

DEFAULT_OVERLAP = 32
# Activation bytes per input pixel of an encoder–decoder level at full resolution (fp32: VGG's 64-channel
# full-resolution layers, their padded copies and the decoder's last layers).
ENCODER_DECODER_BYTES_PER_PX = 1536
TILE_STATISTICS = ("exact", "thumbnail")


@dataclass
class StylizeOptions:
    """The user-facing settings of :func:`stylize`, declared once: the GAN Stylize node's inputs
    and the ``ganstyle stylize`` flags are built from these fields (each ``doc`` is a tooltip)."""
    strength: float = bounded(1.0, 0.0, 1.0, doc="How much of the style to apply: 1 = fully "
                              "stylised, 0 = the input unchanged, in between = a blend.")
    color_mode: str = bounded("none", choices=COLOR_MODES, doc="none: the style's colours. "
                              "luminance: keep the input's colours, take the style's light and "
                              "texture. histogram: match the input's colour statistics.")
    tile_size: int = bounded(0, 0, 16384, doc="0 = automatic: whole images when they fit in "
                             "memory, otherwise seamless tiles sized to the free memory. A number "
                             "forces tiles of that many pixels (smaller tiles use less memory, at "
                             "some speed cost).")
    precision: str = bounded("auto", choices=PRECISIONS, doc="auto = on NVIDIA GPUs fp16 for "
                             "batches over 4 megapixels (faster there, half the memory) and fp32 "
                             "below (faster for single images); on CPUs bf16 where AMX makes it "
                             "much faster (recent Xeons), else fp32.")
    tile_statistics: str = bounded("exact", choices=TILE_STATISTICS, doc="Only for images too "
                                   "large for memory in one pass. exact: the model's normalisation "
                                   "statistics are gathered over the tiles, so the result is "
                                   "identical to an untiled run (several times slower on such "
                                   "images). thumbnail: statistics from a downscaled copy, one pass "
                                   "(faster, but colours and contrast can shift).")
    overlap: int = bounded(DEFAULT_OVERLAP, 0, 4096, doc="Pixels by which neighbouring tiles "
                           "overlap and are feather-blended.")
    palette: float = bounded(0.0, 0.0, 1.0, doc="Arbitrary-style models with a style image only: "
                             "how far to move the result's colours to the painting's own palette "
                             "(its RGB mean and covariance). 0 = the model's colours, 1 = the "
                             "painting's; 0.5 is a good start when colours drift.")

    def validate(self) -> None:
        """The rule between fields: a palette and a colour mode pull opposite ways."""
        if float(self.palette) != 0.0 and self.color_mode != "none":
            raise OptionError(f"{{palette}} (the painting's colours) and {{color_mode}} "
                              f"{brace_escaped(repr(self.color_mode))} (the input's colours) pull opposite ways: "
                              f"use one of them")

    def checked(self) -> StylizeOptions:
        """These options, every field checked against its declared bounds or choices (and
        :meth:`validate`); a bad value raises :class:`~ganstyle.core.config.OptionError` naming
        the field, e.g. ``"strength is 1.5, must be at most 1.0"``."""
        return check_options(self)

    def replaced(self, **changes) -> StylizeOptions:
        """A copy with the fields in ``changes`` that are not None set (the keyword shortcuts of
        :func:`stylize` and :class:`~ganstyle.core.video.VideoStylizer`)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def stylize(model, images: torch.Tensor, options: StylizeOptions | None = None, *,
            style: StyleSpec | None = None, masks: Sequence[tuple[torch.Tensor, StyleSpec]] = (),
            device: str | torch.device | None = None, progress: ProgressCallback | None = None,
            tile: TileOption = "auto", dtype: str | torch.dtype | None = None, channels_last: bool | None = None,
            max_memory: int | None = None, cuda_graphs: bool = True, strength: float | None = None,
            color_mode: str | None = None, overlap: int | None = None, tile_statistics: str | None = None,
            palette: float | None = None) -> torch.Tensor:
    """Stylise ``images`` with a style ``model``.

    model: a :class:`StyleGenerator` or a loaded style model (``core.models.StyleModel``).
    images: (B, 3, H, W) float in [0, 1], any H and W.
    options: the user-facing settings (:class:`StylizeOptions`, checked here: a bad value raises
    :class:`~ganstyle.core.config.OptionError` naming the field); default: their defaults.
    ``strength``, ``color_mode``, ``overlap``, ``tile_statistics`` and ``palette`` are shortcuts:
    given (not None), each replaces that field of ``options``. Their meaning (fields' docs):
    strength: 0..1; the output is ``strength · stylised + (1 − strength) · images`` (0 returns the
    input unchanged, without running the network).
    color_mode: ``"none"``, ``"luminance"`` (keep the input's colours, take the style's light/dark
    structure) or ``"histogram"`` (match the input's colour statistics).
    overlap: pixels by which neighbouring tiles overlap and are feather-blended.
    tile_statistics: for images larger than the memory budget, how instance-norm statistics are
    found: ``"exact"`` (gathered over the tiles, one partial pass per norm layer: the result equals
    the untiled one) or ``"thumbnail"`` (one pass over a downscaled copy: faster, approximate).
    palette: 0..1, with style features (an arbitrary-style model) only: move the result's colours
    this far to each painting's palette (:func:`~ganstyle.core.color.match_palette`; with masks,
    each region to its own painting's).

    style: for a style library, the style(s) to apply: a name, ``"a:0.7, b:0.3"`` or ``{name:
    weight}`` (a blend; :mod:`ganstyle.core.style_choice`); with ``masks``, the style of what no
    mask covers. masks: ``[(mask, style), …]``, each mask (H, W)/(B, H, W)/(B, 1, H, W) in [0, 1]
    at any resolution, giving its region that style in the same single pass (soft edges blend).
    device: where the network runs (default: the model's device; ``"auto"``: CUDA > MPS > CPU).
    progress: ``progress(done, total)`` after every forward pass; may raise to cancel.

    Engine settings for library callers (they override ``options.tile_size`` / ``options.precision``):
    tile: ``"auto"`` (as ``options.tile_size`` says: 0 tiles only what does not fit the memory
    budget), ``None`` (never tile), or a tile side in pixels (raised to at least twice the
    receptive-field halo + 64).
    dtype: a precision of :data:`~ganstyle.core.device.PRECISIONS` or a torch dtype (default:
    ``options.precision``); ``"auto"``: on CUDA fp16 for batches over 2048² pixels, else fp32 with
    TF32 convolutions; bf16 on CPUs with AMX; else fp32 (:func:`~ganstyle.core.device.resolve_dtype`).
    channels_last: NHWC convolutions (default off: measured slower for these networks).
    max_memory: activation bytes one forward pass may use (default: from free device memory).
    cuda_graphs: on CUDA, replay captured graphs for repeated whole-image shapes.
    Returns (B, 3, H, W) float32 in [0, 1] on ``images.device``.
    """
    _check_images(images)
    options = (options or StylizeOptions()).replaced(
        strength=strength, color_mode=color_mode, overlap=overlap, tile_statistics=tile_statistics,
        palette=palette).checked()
    if not (tile is None or tile == "auto" or (isinstance(tile, int) and not isinstance(tile, bool) and tile > 0)):
        raise InputError(f"tile must be 'auto', None or a positive number of pixels, got {tile!r}")
    if tile == "auto" and options.tile_size:
        tile = options.tile_size
    if dtype is None:
        dtype = options.precision
    strength = float(options.strength)
    palettes = style_palettes(style, masks, options)
    images = images.float().clamp(0, 1)
    if strength == 0.0:
        return images.clone()

    generator = getattr(model, "generator", model)
    if isinstance(generator, EncoderDecoder):
        stylised = _stylize_encoder_decoder(generator, images, style, masks, strength, tile, device, dtype,
                                            max_memory, progress)
        strength = 1.0   # applied in feature space, level by level
    else:
        if not isinstance(generator, StyleGenerator):
            raise InputError(f"expected a style model (StyleGenerator), got {type(model).__name__}")
        generator, style_maps = conditioned(generator, images.shape[-2:], images.shape[0], style, list(masks))
        run_device = resolve_device(device) if device is not None else next(generator.parameters()).device
        run_dtype = resolve_dtype(dtype, run_device, images.shape[0] * images.shape[2] * images.shape[3])
        # NCHW is faster than NHWC for these small-channel networks, on GPUs and CPUs alike
        # (docs/benchmarks.md).
        runner = prepare_model(generator, run_device, run_dtype, bool(channels_last))
        engine = TiledEngine(runner, run_device, run_dtype, bool(channels_last), tile, options.overlap, max_memory,
                         progress, cuda_graphs, options.tile_statistics)
        # in [0, 1]: a sigmoid, or a convex blend of tiles
        maps = None if style_maps is None else style_maps.to(images.device)
        stylised = engine.run(images if maps is None else torch.cat([images, maps], 1))
    if palettes:
        shares = region_shares(images.shape[-2:], images.shape[0], style is not None,
                               [mask for mask, _ in masks]) if masks else None
        stylised = match_palette(stylised, palettes, float(options.palette), shares)
    if options.color_mode != "none":
        stylised = apply_color_mode(stylised, images, options.color_mode).clamp_(0, 1)
    if strength < 1.0:
        stylised = torch.lerp(images, stylised, strength)
    return stylised


def _stylize_encoder_decoder(model, images, style, masks, strength, tile, device, dtype, max_memory, progress):
    """:func:`stylize` for the encoder–decoder kind (:mod:`ganstyle.core.decoder_stylize`)."""
    from .decoder_stylize import stylize_encoder_decoder

    run_device = resolve_device(device) if device is not None else next(model.parameters()).device
    run_dtype = resolve_dtype(dtype, run_device, images.shape[2] * images.shape[3])
    budget_px = (max_memory if max_memory is not None else memory_budget(run_device)) // ENCODER_DECODER_BYTES_PER_PX
    if tile == "auto":
        tile = None if images.shape[2] * images.shape[3] <= budget_px else max(256, int(math.sqrt(budget_px)))
    return stylize_encoder_decoder(model, images, style, list(masks), strength=strength, tile=tile,
                                   device=run_device, dtype=run_dtype, progress=progress)


def style_palettes(style: StyleSpec | None, masks: Sequence[tuple[torch.Tensor, StyleSpec]],
                   options: StylizeOptions) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The palettes ``options.palette`` moves towards: [(RGB mean, covariance)] of each mask's
    style features, then the background's (the order of
    :func:`~ganstyle.core.style_choice.region_shares`); [] when the palette is 0. ``options``
    are checked (:meth:`StylizeOptions.checked`). Raises InputError for a palette without style
    features."""
    if float(options.palette) == 0.0:
        return []
    specs = [spec for _, spec in masks] + ([] if style is None else [style])
    if not specs or not all(isinstance(spec, StyleFeatures) for spec in specs):
        raise OptionError("{palette} takes the painting's colours from its style features: it needs an "
                          "arbitrary-style model given Style Features (CLI: --style-image) for the image and "
                          "every mask")
    if any(spec.color_mean is None or spec.color_cov is None for spec in specs):
        raise OptionError("{palette}: these style features carry no colour statistics (recompute them with "
                          "Style Features)")
    return [(spec.color_mean, spec.color_cov) for spec in specs]


def _check_images(images) -> None:
    if not isinstance(images, torch.Tensor):
        raise InputError(f"images must be a tensor shaped (B, 3, H, W), got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise InputError(f"images must be shaped (B, 3, H, W), got {tuple(images.shape)}")
    if images.numel() == 0:
        raise InputError(f"images are empty (shape {tuple(images.shape)})")
    if not images.is_floating_point():
        raise InputError(f"images must be floating point in [0, 1], got {images.dtype}")
    if not torch.isfinite(images).all():
        raise InputError("images contain NaN or Inf values")
