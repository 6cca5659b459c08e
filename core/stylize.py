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
import torch.nn.functional as F

from .color import COLOR_MODES, apply_color_mode, match_palette
from .config import OptionError, bounded, brace_escaped, check_options
from .decoder import EncoderDecoder
from .device import PRECISIONS, memory_budget, resolve_device, resolve_dtype
from .errors import InputError
from .features import StyleFeatures
from .generator import StyleGenerator
from .model_copies import GRAPH_MAX_BYTES, graph_forward, prepare_model
from .norm_statistics import InstanceNorm2d, NormStatistics, StatisticsGathered
from .style_choice import StyleSpec, conditioned, region_shares
from .tiles import TilePlan, ramp, tile_spans

ProgressCallback = Callable[[int, int], None]
TileOption = str | int | None

DEFAULT_OVERLAP = 32
# Activation bytes per input pixel of an encoder–decoder level at full resolution (fp32: VGG's 64-channel
# full-resolution layers, their padded copies and the decoder's last layers).
ENCODER_DECODER_BYTES_PER_PX = 1536
MIN_TILE_CORE = 64   # output pixels per tile side, at least (below this, halos dominate)
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


class _Engine:
    """One :func:`stylize` call: settings, the memory budget (which shrinks on OOM) and progress."""

    def __init__(self, generator: StyleGenerator, device, dtype, channels_last, tile, overlap,
                 max_memory, progress, cuda_graphs=True, tile_statistics="exact"):
        self.g, self.device, self.dtype = generator, device, dtype
        self.tile_statistics = tile_statistics
        self.norm_layers = sum(isinstance(m, InstanceNorm2d) for m in generator.modules())
        self.cuda_graphs = cuda_graphs and device.type == "cuda"
        self.fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.tile_option, self.overlap, self.progress = tile, overlap, progress
        self.bytes_per_pixel = generator.activation_bytes_per_pixel(dtype)
        budget = max_memory if max_memory is not None else memory_budget(device)
        self.budget_px = max(1, int(budget) // self.bytes_per_pixel)
        self.align = generator.config.stride
        radius = generator.receptive_radius() + self.align  # + the stride padding at window edges
        self.halo = -(-radius // self.align) * self.align
        self.min_tile = 2 * self.halo + MIN_TILE_CORE
        self.done = 0
        self.total = 0
        self.last_forward_px = 0

    # -- planning ---------------------------------------------------------------------------------
    def plan(self, h: int, w: int) -> TilePlan | None:
        """How to cut an (h, w) image under the current budget, or None to run it whole."""
        fits = h * w <= self.budget_px
        if self.tile_option is None:
            return None
        if self.tile_option == "auto":
            if fits:
                return None
            side = int(math.sqrt(self.budget_px))
        else:
            side = min(int(self.tile_option), int(math.sqrt(self.budget_px)))
            if max(h, w) <= side and fits:
                return None
        side = max(self.min_tile, side // self.align * self.align)
        overlap = min(self.overlap, (side - 2 * self.halo) // 4)
        return TilePlan(side, self.halo, overlap, self.align)

    def steps_for(self, h: int, w: int) -> int:
        """Forward passes for one (h, w) image: 1, or the tiles plus the statistics pass(es)."""
        plan = self.plan(h, w)
        if plan is None:
            return 1
        tiles = len(tile_spans(h, plan)) * len(tile_spans(w, plan))
        return tiles + (tiles * self.norm_layers if self.gathers_statistics(h, w) else 1)

    def gathers_statistics(self, h: int, w: int) -> bool:
        """Whether norm statistics of an (h, w) image are gathered tile by tile (see statistics)."""
        return h * w > self.budget_px and self.tile_statistics == "exact" and self.norm_layers > 0

    def tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)

    # -- running ----------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, whole: bool = False) -> torch.Tensor:
        """One pass; ``whole``: a plain whole-image pass (no norm statistics), which may replay a
        CUDA graph."""
        self.last_forward_px = x.shape[0] * x.shape[-2] * x.shape[-1]
        x = x.to(device=self.device, dtype=self.dtype, memory_format=self.fmt)
        if whole and self.cuda_graphs and self.last_forward_px * self.bytes_per_pixel <= GRAPH_MAX_BYTES:
            return graph_forward(self.g, x)
        return self.g(x)

    def images_per_forward(self, h: int, w: int) -> int:
        """Whole images per forward pass (1 when the image is tiled)."""
        return max(1, self.budget_px // (h * w)) if self.plan(h, w) is None else 1

    def run(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float32 in [0, 1] (for a K-style library, (B, 3 + K, H, W): the per-pixel
        style weights follow the image through batching and tiles) → stylised (B, 3, H, W) on
        ``images.device``."""
        b, _, h, w = images.shape
        if self.images_per_forward(h, w) >= b:  # the common case: one pass, no output buffer
            self.total = self.steps_for(h, w)
            try:
                return self.run_chunk(images)
            except torch.OutOfMemoryError:
                pass  # fall through to the shrinking loop below
            self.shrink(b)
        out = images.new_empty(b, 3, h, w)
        i = 0
        while i < b:
            n = min(b - i, self.images_per_forward(h, w))
            # remaining work under the current plan (it changes when an OOM shrinks the budget)
            self.total = self.done + -(-(b - i) // n) * self.steps_for(h, w)
            try:
                out[i:i + n] = self.run_chunk(images[i:i + n])
            except torch.OutOfMemoryError:
                out_of_memory = True  # handled below, once the failed pass's tensors are released
            else:
                out_of_memory = False
                i += n
            if out_of_memory:
                self.shrink(n)
        return out

    def shrink(self, images_in_chunk: int) -> None:
        """After an out-of-memory error: a quarter of the pixels per forward pass (tile side
        halved), or re-raise when that is impossible (tiling off, or already the minimum tile)."""
        tried = self.last_forward_px
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if images_in_chunk == 1 and (self.tile_option is None or tried <= self.min_tile ** 2):
            raise torch.OutOfMemoryError(
                f"ganstyle: out of memory on {self.device} running {tried} pixels at once "
                f"(about {self.bytes_per_pixel} bytes per pixel in {self.dtype}, tiling "
                f"{'off' if self.tile_option is None else 'at its minimum'}); use tiling, a smaller "
                f"image, fp16, or another device")
        self.budget_px = max(1, min(self.budget_px, tried) // 4)

    def run_chunk(self, images: torch.Tensor) -> torch.Tensor:
        plan = self.plan(*images.shape[-2:])
        if plan is None:
            with torch.inference_mode():
                result = self.forward(images, whole=True).to(images.device, torch.float32)
            self.tick()
            return result
        return self.run_tiled(images, plan)

    def statistics(self, images: torch.Tensor, plan: TilePlan) -> NormStatistics:
        """Pass 1: norm statistics of the whole image. When it does not fit the budget: gathered
        exactly over the tiles (``tile_statistics="exact"``), or from the largest downscaled copy
        that fits (``"thumbnail"``: one pass, approximate)."""
        h, w = images.shape[-2:]
        if self.gathers_statistics(h, w):
            return self.gathered_statistics(images, plan)
        stats = NormStatistics()
        source = images
        if h * w > self.budget_px:
            scale = math.sqrt(self.budget_px / (h * w))
            size = (max(self.align, int(h * scale)), max(self.align, int(w * scale)))
            source = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
        with torch.inference_mode(), stats.record():
            self.forward(source)
        self.tick()
        return stats

    def gathered_statistics(self, images: torch.Tensor, plan: TilePlan) -> NormStatistics:
        """Exact whole-image statistics from tiles, one norm layer per round: every tile runs up to
        the first layer without statistics (earlier ones frozen at their exact values, so the
        tile's centre equals the whole image's there) and adds the mean/variance of the part it
        owns. Costs one partial pass over the tiles per norm layer."""
        h, w = images.shape[-2:]
        stats = NormStatistics()

        def owned(spans):   # (start, end, in_start, in_end): a partition of the axis
            return [(s[0], spans[i + 1][0] if i + 1 < len(spans) else s[1], s[2], s[3])
                    for i, s in enumerate(spans)]

        rows, cols = owned(tile_spans(h, plan)), owned(tile_spans(w, plan))
        for _ in range(self.norm_layers):
            for y0, y1, iy0, iy1 in rows:
                for x0, x1, ix0, ix1 in cols:
                    region = (y0 - iy0, y1 - iy0, x0 - ix0, x1 - ix0)
                    with torch.inference_mode(), stats.gathering(region, (iy1 - iy0, ix1 - ix0), self.align):
                        try:
                            self.forward(images[..., iy0:iy1, ix0:ix1])
                        except StatisticsGathered:
                            pass
                    self.tick()
            if not stats.finish_layer():
                break
        return stats

    def run_tiled(self, images: torch.Tensor, plan: TilePlan) -> torch.Tensor:
        b, _, h, w = images.shape
        stats = self.statistics(images, plan)
        rows, cols = tile_spans(h, plan), tile_spans(w, plan)
        out = torch.zeros(b, 3, h, w, dtype=torch.float32, device=images.device)
        weight_sum = torch.zeros(1, 1, h, w, dtype=torch.float32, device=images.device)
        for ri, (y0, y1, iy0, iy1) in enumerate(rows):
            wy = ramp(rows, ri, plan.overlap).to(images.device)
            for ci, (x0, x1, ix0, ix1) in enumerate(cols):
                wx = ramp(cols, ci, plan.overlap).to(images.device)
                with torch.inference_mode(), stats.frozen():
                    y = self.forward(images[..., iy0:iy1, ix0:ix1])
                y = y[..., y0 - iy0:y1 - iy0, x0 - ix0:x1 - ix0].to(images.device, torch.float32)
                weight = wy.view(1, 1, -1, 1) * wx.view(1, 1, 1, -1)
                out[..., y0:y1, x0:x1] += y * weight
                weight_sum[..., y0:y1, x0:x1] += weight
                self.tick()
        return out.div_(weight_sum)


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
        engine = _Engine(runner, run_device, run_dtype, bool(channels_last), tile, options.overlap, max_memory,
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
