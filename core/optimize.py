"""Optimisation-based style transfer (Gatys et al. 2016): optimise the pixels of an image so its
VGG features match a content image (``relu4_2``) and a style's Gram matrices (``relu1_1`` …
``relu5_1``), with total-variation smoothing.

The entry point is :func:`optimize_stylize` with an :class:`OptimizeOptions`.

How it stays fast, bounded and resolution-independent:

* **Normalised losses.** Gram matrices and feature MSEs are already means over pixels, so they do
  not grow with the image. On top of that each term is divided by the size of its target (content
  loss by mean(target²), each layer's Gram loss by mean(target Gram²)): every term is a *relative*
  error of order 1, whatever the encoder, the layer or the resolution. One set of default weights
  therefore works from 256 px to print size, and per-layer style weights mean what they say.
* **Coarse to fine.** The image is optimised first with its long side at ``start_side`` pixels,
  then upsampled (×2 per scale) and refined, with fewer evaluations at each finer scale
  (:func:`plan_scales`). The coarse scales fix the composition cheaply; the fine scales add
  detail. The first scale starts from ``init``; each later one from the content of its own size
  plus the upsampled stylisation (result − content) of the scale before.
* **A lean L-BFGS** (:mod:`ganstyle.core.lbfgs`): the search direction comes from the compact
  form of the L-BFGS matrix (a few matrix-vector products, nothing read back from the device);
  each iteration queues the next direction before the host waits for the loss (as if the step
  will be accepted, which it almost always is), so a GPU does not sit idle while the host
  decides; and the first step is a gradient step of ~1 % of the pixel range, instead of a tiny
  step the line search must grow over several evaluations.
* **Preconditioned.** L-BFGS optimises z with the image x = x0 + W·z, W a fixed low-pass filter
  (:class:`SpectralPreconditioner`): on raw pixels it first spends many steps learning that broad
  changes are cheap and fine ones stiff; through W it starts out knowing, and needs 17–46 % fewer
  evaluations for the same loss (four image pairs measured; at 1024 px the loss of 300
  iterations of ``torch.optim.LBFGS`` took 156 on a CPU, 277 on raw pixels on an H100).
* **Fast evaluations on a GPU.** Under mixed precision the VGG pass runs in bf16 channels-last and
  so do the Gram products (on the channels-last features as they are, no layout copy); each
  scale's evaluation (forward, losses, backward) is captured once as a CUDA graph and replayed.
  Measured at 1024 px on an H100: 5.1–5.5 ms per evaluation against 12.6–13.1 ms in plain fp32
  (TF32) PyTorch, and 20–26 ms per iteration of ``torch.optim.LBFGS`` around that.
* **Bounded memory.** VGG activations for a forward+backward pass cost ~2.5–3 KB per pixel in fp32
  (VGG16/19 up to ``relu5_1``), 30+ GB at 4096 px. When that exceeds the memory budget
  (:func:`ganstyle.core.stylize.memory_budget`: 60 % of free CUDA memory, 25 % of available RAM up
  to 8 GiB on a CPU) or ``tile_size``, the loss is computed over tiles: a first pass without
  gradients sums each tile's Gram contribution to get the exact global Grams, then a second pass
  backpropagates each tile's share of the loss (its contribution weighted by ∂loss/∂Gram). Tiles
  overlap by the encoder's receptive-field radius and start on multiples of its total stride, so
  the tiled loss and gradient are *the same* as the untiled ones (up to float rounding), while
  peak memory is that of one tile plus O(pixels) for the image, its gradient and the L-BFGS
  history (``history_size`` pairs of image-sized vectors, and one spare: by default 20, on a CPU
  fewer if 20 would not fit a quarter of the budget).
* **Mixed precision.** ``mixed_precision="auto"`` runs the VGG forward/backward and the Gram
  products under bf16 autocast in channels-last layout where that is fast: CUDA GPUs with bf16,
  and CPUs with AMX (measured 2.2x faster per evaluation than fp32 on such a CPU). The products
  accumulate in fp32; losses, the L-BFGS state and the optimised image stay fp32. Elsewhere
  everything is fp32. Results are compared on fp32 losses (:func:`evaluate_losses`).

It runs inside ``torch.inference_mode()`` (ComfyUI calls nodes that way): autograd is re-enabled
locally and inference tensors (inputs, style targets, encoder weights made under inference mode)
are cloned into ordinary tensors first.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Mapping

import torch
import torch.nn.functional as F

from .color import COLOR_MODES, apply_color_mode
from .config import bounded, config_from_dict
from .device import read_later
from .errors import InputError
from .features import StyleFeatures, gram_matrix
from .lbfgs import lbfgs
from .losses import content_loss, total_variation
from .stylize import cpu_has_fast_bf16, memory_budget
from .vgg import CONTENT_LAYER, VGGEncoder

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "content_colored")
MIXED_PRECISION_MODES = ("auto", "bf16", "off")

# Safety factor on the per-pixel estimate of activation memory (allocator slack, temporaries).
_ESTIMATE_SAFETY = 1.3
# Pixels leaving [0, 1] are pulled back by a quadratic penalty (clamping the parameter between
# L-BFGS iterations would break its curvature history); the result is clamped at the end.
_RANGE_PENALTY = 100.0
# Mean size of the first L-BFGS step (a gradient step) per pixel value.
_FIRST_STEP = 0.01
# The spectral preconditioner's frequency scale (cycles per image along the long side) and
# steepness (SpectralPreconditioner).
_PRECONDITION_CUTOFF = 5.0
_PRECONDITION_EXPONENT = 0.5
PRECONDITIONERS = ("spectral", "none")


class StyleTransferCancelled(Exception):
    """Raise this (or any exception) from a progress callback to abort :func:`optimize_stylize`."""


# progress(step, total, losses, preview) → truthy to stop early and return the image as it is.
# ``losses``: {"total", "content", "style", "tv"} floats; ``preview``: (1, 3, h, w) in [0, 1] or None.
ProgressCallback = Callable[[int, int, dict, "torch.Tensor | None"], "bool | None"]


@dataclass
class OptimizeOptions:
    """Settings of :func:`optimize_stylize`. Defaults give a good result at any resolution."""
    steps: int = bounded(100, 1, 100_000, doc="loss evaluations at the coarsest scale; each finer "
                         "scale gets half as many as the one before (at least min_steps)")
    long_side: int = bounded(512, 0, 16384, doc="output long side in px; 0 = the content's size")
    start_side: int = bounded(256, 16, 16384, doc="long side of the coarsest scale; scales double "
                              "up to long_side (>= long_side: a single scale)")
    min_steps: int = bounded(20, 1, 100_000, doc="fewest loss evaluations at any scale")
    optimizer: str = bounded("lbfgs", choices=OPTIMIZERS, doc="L-BFGS (best) or Adam")
    lr: float = bounded(0.0, 0.0, 10.0, doc="step size; 0 = the optimiser's default (L-BFGS 1.0, "
                        "the full quasi-Newton step; Adam 0.02 in [0, 1] pixel units)")
    content_weight: float = bounded(1.0, 0.0, 1e6, doc="weight of the relative relu4_2 error")
    style_weight: float = bounded(1.0, 0.0, 1e6, doc="weight of the relative Gram error")
    tv_weight: float = bounded(0.1, 0.0, 1e6, doc="weight of total variation (mean |pixel step|)")
    style_layer_weights: dict | None = bounded(None, doc="{layer: weight}; None = equal weights "
                                              "over the style's layers")
    init: str = bounded("content", choices=INITS, doc="start image: the content, noise, or the "
                        "content recoloured with the style's palette")
    color_mode: str = bounded("none", choices=COLOR_MODES, doc="keep the content's colours: "
                              "'luminance' (transfer luminance only) or 'histogram' (match stats)")
    seed: int = bounded(0, 0, 2**63 - 1, doc="seed of the noise init")
    mixed_precision: str = bounded("auto", choices=MIXED_PRECISION_MODES,
                                   doc="'auto': bf16 VGG where fast (CUDA, CPUs with AMX); "
                                   "'bf16': always; 'off': fp32")
    preview_every: int = bounded(0, 0, 100_000, doc="pass a preview image to the callback every "
                                 "N steps (0 = never)")
    tile_size: int = bounded(0, 0, 16384, doc="core tile side in px for the tiled loss; 0 = auto "
                             "(tile only when one pass would not fit the memory budget)")
    cuda_graph: bool = bounded(True, doc="on CUDA, replay each scale's loss evaluation as a CUDA "
                               "graph (faster; falls back to plain evaluation if capture fails)")
    precondition: str = bounded("spectral", choices=PRECONDITIONERS, doc="L-BFGS: 'spectral' "
                                "optimises through a low-pass filter that lets large areas move as "
                                "fast as fine detail (fewer steps for the same loss); 'none': raw pixels")
    history_size: int = bounded(0, 0, 200, doc="L-BFGS history length, each entry 2 image-sized "
                                "vectors; 0 = auto: 20 (on a CPU as many as fit a quarter of the "
                                "memory budget, 10 to 20)")

    def validate(self) -> None:
        w = self.style_layer_weights
        if w is not None:
            if not isinstance(w, Mapping) or not w:
                raise ValueError(f"field 'style_layer_weights' must be a non-empty {{layer: weight}} "
                                 f"mapping, got {w!r}")
            bad = {k: v for k, v in w.items()
                   if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0}
            if bad:
                raise ValueError(f"field 'style_layer_weights' has invalid weights {bad}; "
                                 f"weights must be finite and >= 0")
            if sum(w.values()) <= 0:
                raise ValueError("field 'style_layer_weights' needs at least one positive weight")

    def checked(self) -> "OptimizeOptions":
        """A validated copy; bad values raise :class:`~ganstyle.core.errors.ConfigError`."""
        return config_from_dict(OptimizeOptions, dataclasses.asdict(self), source="OptimizeOptions")


@dataclass(frozen=True)
class Scale:
    height: int
    width: int
    steps: int


def plan_scales(height: int, width: int, options: OptimizeOptions) -> list[Scale]:
    """The coarse-to-fine schedule for a (height, width) content image.

    Long sides double from ``start_side`` up to ``long_side`` (the last step may be less than
    ×2); the coarsest scale gets ``steps`` evaluations, each finer one half the previous, but never
    fewer than ``min_steps`` (or ``steps``, if that is smaller). Sizes keep the aspect ratio.

    >>> [(s.height, s.width, s.steps) for s in plan_scales(300, 400, OptimizeOptions(long_side=2048))]
    [(192, 256, 100), (384, 512, 50), (768, 1024, 25), (1536, 2048, 20)]
    """
    target = options.long_side or max(height, width)
    sides = [target]
    while sides[-1] // 2 >= options.start_side:
        sides.append(sides[-1] // 2)
    sides.reverse()
    plan = []
    for k, side in enumerate(sides):
        scale = side / max(height, width)
        h, w = max(1, round(height * scale)), max(1, round(width * scale))
        plan.append(Scale(h, w, max(min(options.min_steps, options.steps), math.ceil(options.steps / 2 ** k))))
    return plan


def optimize_stylize(encoder: VGGEncoder, content: torch.Tensor, style: StyleFeatures,
                     options: OptimizeOptions | None = None,
                     progress: ProgressCallback | None = None) -> torch.Tensor:
    """Stylise each content image by optimising its pixels.

    encoder: a :class:`VGGEncoder` computing ``relu4_2`` and the style's layers; ``style`` must have
    been computed with this same encoder (else :class:`InputError`).
    content: (B, 3, H, W) in [0, 1]; images are processed one at a time.
    progress: called after every loss evaluation as ``progress(step, total, losses, preview)``;
    raise (e.g. :class:`StyleTransferCancelled`) to abort, return True to stop early.
    Returns (B, 3, H', W') in [0, 1] on ``content``'s device, H'×W' being ``long_side`` on the long
    side (the content's size when ``long_side`` is 0).
    """
    options = (options or OptimizeOptions()).checked()
    _check_inputs(encoder, content, style, options)
    with torch.inference_mode(False), torch.enable_grad():
        encoder, autocast_dtype = _prepare_encoder(encoder, options.mixed_precision)
        device = encoder.device
        style = _clone_style(style, device)
        plan = plan_scales(content.shape[-2], content.shape[-1], options)
        if min(plan[0].height, plan[0].width) < 16:
            raise InputError(f"content image {tuple(content.shape[-2:])} is too thin: at the coarsest "
                             f"scale it would be {plan[0].height}x{plan[0].width} px; VGG needs at "
                             f"least 16 px per side (raise start_side)")
        total = len(content) * sum(s.steps for s in plan)
        counter = _Counter(total, progress, options.preview_every)
        results = []
        for i in range(len(content)):
            image = content[i:i + 1].detach().clone().to(device, torch.float32)
            generator = torch.Generator().manual_seed(options.seed + i)
            result = _stylize_one(encoder, image, style, options, plan, generator, counter, autocast_dtype)
            results.append(result.to(content.device))
            if counter.stopped:
                break
        # An early stop leaves later images as their (resized) content, so the batch keeps its size.
        for i in range(len(results), len(content)):
            h, w = plan[-1].height, plan[-1].width
            results.append(_resize(content[i:i + 1].float(), h, w).clamp(0, 1))
        return torch.cat(results)


# ----------------------------------------------------------------------------------------------
# one image


def _stylize_one(encoder, content, style, options, plan, generator, counter, autocast_dtype) -> torch.Tensor:
    """content: (1, 3, H, W) fp32 on the encoder's device → (1, 3, h, w) of the last scale."""
    objective_kw = _objective_settings(style, options, autocast_dtype)
    x = prev_content = None
    for scale in plan:
        target = _resize(content, scale.height, scale.width).clamp(0, 1)
        if x is None:
            x = _initial_image(target, style, options.init, generator)
        else:
            # Upsample the stylisation *delta* and add it to the sharp content of this scale: the
            # new scale starts with the content's fine detail instead of a blurred copy (measured:
            # a lower final loss than upsampling the result itself).
            x = target + _resize(x - prev_content, scale.height, scale.width)
        prev_content = target
        objective = StyleObjective(encoder, target, **objective_kw)
        counter.begin_scale(scale.steps)
        x = _run_optimizer(objective, x, scale.steps, options, counter)
        if counter.stopped:
            break
    final = plan[-1]
    x = _resize(x, final.height, final.width)   # only after an early stop at a coarser scale
    return apply_color_mode(x.clamp(0, 1), content, options.color_mode)


def _run_optimizer(objective: "StyleObjective", x0: torch.Tensor, steps: int, options: OptimizeOptions,
                   counter: "_Counter") -> torch.Tensor:
    """``steps`` loss evaluations from x0 (1, 3, h, w); returns the image (not yet clamped)."""
    x0 = x0.detach().contiguous()
    if options.optimizer == "lbfgs":
        last = x0
        smooth = (SpectralPreconditioner(x0.shape[-2], x0.shape[-1], x0.device)
                  if options.precondition == "spectral" else (lambda v: v))

        def loss_and_grad(z: torch.Tensor) -> tuple[Callable[[], float], torch.Tensor]:
            # L-BFGS runs on z, the image being x0 + W·z: ∂loss/∂z = Wᵀ·∂loss/∂x = W·∂loss/∂x.
            image = (x0 + smooth(z.view(x0.shape))).detach().requires_grad_(True)
            pending = objective.evaluate_later(image)

            def total() -> float:   # lbfgs() calls it once it has queued its next device work
                nonlocal last
                losses = pending()
                last = image.detach()
                counter.step(losses, last)
                return losses["total"]
            return total, smooth(image.grad).view(-1)

        try:
            z = lbfgs(loss_and_grad, torch.zeros_like(x0).flatten(), steps,
                      options.history_size or _auto_history(x0.numel(), x0.device),
                      first_step=_FIRST_STEP, step_size=options.lr or 1.0)
        except _StopEarly:
            return last   # the image of the last evaluation, whose loss the callback accepted
        return x0 + smooth(z.view(x0.shape))

    x = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=options.lr or 0.02)
    try:
        for _ in range(steps):
            opt.zero_grad(set_to_none=False)
            counter.step(objective.evaluate(x), x)
            opt.step()
            with torch.no_grad():
                x.clamp_(0, 1)
    except _StopEarly:
        pass
    return x.detach()


class SpectralPreconditioner:
    """The symmetric low-pass filter W that L-BFGS sees the image through (x = x0 + W·z).

    W scales each spatial frequency f by ``(1 + (f / cutoff)²)^(-exponent/2)``, f and the cutoff in
    cycles per image (along the long side): 1 for flat areas, about (cutoff / f)^½ for patterns
    much finer than the cutoff. Gradient methods on raw pixels move fine detail first and large
    areas slowly (the loss is much stiffer along high frequencies); L-BFGS only learns that from
    its few history pairs. Through W it starts from an estimate that already trusts broad changes
    more (a Sobolev gradient), so it needs fewer evaluations for the same loss.

    Measured in evaluations to reach a loss (bf16; the reference is the first version of W, its
    cutoff 0.05 cycles per *pixel*, after 300 evaluations at 384 px, 200 at 1024 px): Garden.jpg /
    Elephants.jpg at 384 px, cutoff 9.6 / 4.8 / 2.4 cycles per image: 237 / 219 / 237 (first
    version: 300); at 1024 px, 26 / 13 / 6.4 / 5: 170 / 159 / 140 / 140 (first version: 200). The
    best cutoff is a number of cycles per image, not per pixel. At 384 px, 5 cycles per image on
    three more content/style pairs: 242, 245 and 165 evaluations for the first version's 250.
    Against ``torch.optim.LBFGS`` (fp32, 384 px): the losses it has after 100 / 200 / 300
    evaluations take 53 / 138 / 225 evaluations through W, 68 / 157 / 266 through its first
    version and 96 / 205 / 338 on raw pixels.
    W is real and even in frequency, so Wᵀ = W.

    images: (..., height, width) float32 → same shape.

    >>> w = SpectralPreconditioner(64, 64, torch.device("cpu"))
    >>> flat = torch.ones(1, 3, 64, 64)
    >>> torch.allclose(w(flat), flat)        # DC passes unchanged
    True
    >>> checker = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 * 2.0 - 1
    >>> round(float(w(checker).abs().max()), 2)   # the finest pattern is damped
    0.33
    """

    def __init__(self, height: int, width: int, device: torch.device,
                 cutoff: float = _PRECONDITION_CUTOFF, exponent: float = _PRECONDITION_EXPONENT):
        long_side = max(height, width)
        fy = torch.fft.fftfreq(height, device=device)[:, None] * long_side   # cycles per image
        fx = torch.fft.rfftfreq(width, device=device)[None, :] * long_side
        self.size = (height, width)
        self.gain = (1 + (fy ** 2 + fx ** 2) / cutoff ** 2) ** (-exponent / 2)   # (height, width//2+1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(torch.fft.rfft2(images) * self.gain, s=self.size)


def _auto_history(values: int, device: torch.device) -> int:
    """L-BFGS history length: 20 pairs. Each iteration makes two passes over the history, and
    more pairs did not pay: H100, 1024 px, fp32: the baseline's loss after 275 evaluations with 20
    pairs, 274 with 100; CPU, 384 px, bf16, preconditioned: 245 and 243. On a CPU 100 pairs made
    every evaluation 12 % (512 px) to 20 % (1024 px) slower. On a CPU at most as many pairs as fit a
    quarter of the memory budget (at least 10)."""
    if device.type == "cuda":
        return 20
    return int(min(20, max(10, memory_budget(device) // 4 // (2 * 4 * values))))


class _StopEarly(Exception):
    """The progress callback returned True: leave the optimiser loop, keep the image."""


class _Counter:
    """Counts loss evaluations over the whole run and talks to the progress callback.

    L-BFGS may overrun a scale's budget by a few evaluations (it checks the budget between
    iterations, not inside a line search): the reported step stays at the scale's end then."""

    def __init__(self, total: int, callback: ProgressCallback | None, preview_every: int):
        self.total, self.callback, self.preview_every = total, callback, preview_every
        self.done = self.scale_end = self.evaluations = 0
        self.stopped = False

    def begin_scale(self, steps: int) -> None:
        self.done = self.scale_end
        self.scale_end += steps

    def step(self, losses: dict[str, float], x: torch.Tensor) -> None:
        self.done = min(self.done + 1, self.scale_end)
        self.evaluations += 1
        if self.callback is None:
            return
        preview = None
        if self.preview_every and (self.evaluations % self.preview_every == 0 or self.done == self.total):
            preview = x.detach().clamp(0, 1).clone()
        if self.callback(self.done, self.total, dict(losses), preview):
            self.stopped = True
            raise _StopEarly


# ----------------------------------------------------------------------------------------------
# the objective


def _objective_settings(style: StyleFeatures, options: OptimizeOptions,
                        autocast_dtype: torch.dtype | None) -> dict:
    """Everything about the loss that does not depend on the scale."""
    raw = options.style_layer_weights or {name: 1.0 for name in style.layers}
    unknown = sorted(set(raw) - set(style.layers))
    if unknown:
        raise InputError(f"style_layer_weights names layers {unknown} that the style features do not "
                         f"have (they have {list(style.layers)})")
    # Weights are normalised to sum to 1, and each layer's Gram error is divided by its target's
    # mean square (a relative error), so every layer counts alike whatever its magnitude.
    total = sum(raw.values())
    layer_weights = {name: float(weight) / total / (float(style.grams[name].float().pow(2).mean()) or 1.0)
                     for name, weight in raw.items() if weight > 0}
    return dict(grams={k: style.grams[k] for k in layer_weights}, layer_weights=layer_weights,
                content_weight=options.content_weight, style_weight=options.style_weight,
                tv_weight=options.tv_weight, tile_size=options.tile_size, autocast_dtype=autocast_dtype,
                cuda_graph=options.cuda_graph)


class StyleObjective:
    """The loss of :func:`optimize_stylize` for one content image (1, 3, H, W) at one size.

    ``evaluate(x)`` takes an image (1, 3, H, W) that requires grad, fills ``x.grad`` and returns
    the terms as floats: {"total", "content", "style", "tv"}; ``evaluate_later(x)`` returns a
    function giving them, so a caller can queue more device work before it waits. The VGG part
    is computed over the whole image, or tile by tile when one pass would not fit the memory
    budget (see the module docstring); both give the same numbers. Build it with :meth:`create`.
    """

    @classmethod
    def create(cls, encoder: VGGEncoder, content: torch.Tensor, style: StyleFeatures,
               options: OptimizeOptions | None = None) -> "StyleObjective":
        """content: (1, 3, H, W) in [0, 1] on the encoder's device, at the size to optimise.
        Call outside inference mode (see :func:`optimize_stylize`)."""
        options = (options or OptimizeOptions()).checked()
        _check_inputs(encoder, content, style, options)
        return cls(encoder, content, **_objective_settings(style, options, None))

    def __init__(self, encoder: VGGEncoder, content: torch.Tensor, *, grams, layer_weights,
                 content_weight, style_weight, tv_weight, tile_size, autocast_dtype, cuda_graph=False):
        self.encoder = encoder
        self.use_graph = cuda_graph and encoder.device.type == "cuda"
        self._graph = self._static = None   # the captured evaluation (see _evaluate_graphed)
        self.grams = grams
        self.layer_weights = layer_weights
        self.content_weight, self.style_weight, self.tv_weight = content_weight, style_weight, tv_weight
        self.autocast_dtype = autocast_dtype
        self.style_layers = list(grams)
        self.layers = list(dict.fromkeys([CONTENT_LAYER, *self.style_layers]))
        h, w = content.shape[-2:]
        self.tiles = _plan_tiles(encoder, h, w, self.layers, tile_size, autocast_dtype)
        with torch.no_grad():
            self.content_target = self._features_no_grad(content, [CONTENT_LAYER])[CONTENT_LAYER]
        self.content_scale = float(self.content_target.float().pow(2).mean()) or 1.0

    # -- helpers ---------------------------------------------------------------------------
    def _forward(self, images: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        if self.autocast_dtype is None:
            return self.encoder(images, layers)
        # bf16 convolutions are fastest in channels-last layout (cuDNN and oneDNN/AMX alike)
        # (no autocast weight cache: cached casts must not outlive a CUDA graph capture)
        with torch.autocast(device_type=images.device.type, dtype=self.autocast_dtype, cache_enabled=False):
            return self.encoder(images.contiguous(memory_format=torch.channels_last), layers)

    def _features_no_grad(self, images, layers) -> dict[str, torch.Tensor]:
        """Whole-image features, assembled from tile cores when tiling (for the content target)."""
        if self.tiles is None:
            return {k: v.float() for k, v in self._forward(images, layers).items()}
        out: dict[str, torch.Tensor] = {}
        for tile in self.tiles:
            feats = self._forward(images[..., tile.crop_y0:tile.crop_y1, tile.crop_x0:tile.crop_x1], layers)
            for name in layers:
                core, (y0, y1, x0, x1) = tile.core(name, feats[name])
                if name not in out:
                    s = tile.stride(name)
                    h, w = images.shape[-2] // s, images.shape[-1] // s
                    out[name] = torch.empty(1, core.shape[1], h, w, device=core.device)
                out[name][..., y0:y1, x0:x1] = core.float()
        return out

    def _style_loss(self, grams: dict[str, torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for name, g in grams.items():
            total = total + self.layer_weights[name] * (g - self.grams[name]).pow(2).mean()
        return total

    def _pixel_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tv = total_variation(x)
        out_of_range = (x - x.clamp(0, 1)).pow(2).mean()
        return tv, out_of_range

    # -- evaluation --------------------------------------------------------------------------
    def evaluate(self, image: torch.Tensor) -> dict[str, float]:
        return self.evaluate_later(image)()

    def evaluate_later(self, image: torch.Tensor) -> Callable[[], dict[str, float]]:
        """Like :meth:`evaluate`, but the losses come from the returned function, which waits for
        the device only when called: the caller can queue more GPU work first. ``image.grad`` is
        set (as a queued result) before this returns."""
        if image.is_leaf:   # the common case: the gradient goes straight to image.grad (replaced)
            image.grad = None
            return self._evaluate_leaf(image)
        # An image built from a parameterisation: evaluate a leaf copy (so tiles can backpropagate
        # one by one), then hand its gradient to the image's own graph in one go.
        x = image.detach().requires_grad_(image.requires_grad)
        losses = self._evaluate_leaf(x)
        if image.requires_grad:
            torch.autograd.backward(image, x.grad)
        return losses

    def _evaluate_leaf(self, x: torch.Tensor) -> Callable[[], dict[str, float]]:
        if self.tiles is None and x.requires_grad and self.use_graph and self._graph_ready(x):
            terms = self._evaluate_graphed(x)
        else:
            terms = self._terms(x)
            if x.requires_grad:
                terms[0].backward()
        return _losses_later(terms.detach())

    def _terms(self, x: torch.Tensor) -> torch.Tensor:
        """(4,) tensor: total, content, style and tv terms of x. Nothing is read back from the
        device, so this can be captured in a CUDA graph (untiled)."""
        if self.tiles is None:
            feats = self._forward(x, self.layers)
            c_loss = content_loss(feats[CONTENT_LAYER], self.content_target) / self.content_scale
            # Under mixed precision the Gram products run in bf16 too (fp32 accumulation): on
            # channels-last features that takes a 1024 px evaluation on an H100 from 12 to 8 ms.
            dtype = None if self.autocast_dtype is not None else torch.float32
            s_loss = self._style_loss({n: gram_matrix(feats[n], dtype)[0] for n in self.style_layers})
        else:
            c_loss, s_loss = self._evaluate_tiled(x)
        tv, out_of_range = self._pixel_terms(x)
        total = (self.content_weight * c_loss + self.style_weight * s_loss + self.tv_weight * tv
                 + _RANGE_PENALTY * out_of_range)
        return torch.stack([total, c_loss.to(total), torch.as_tensor(s_loss).to(total), tv.to(total)])

    def _graph_ready(self, x: torch.Tensor) -> bool:
        """Capture the evaluation graph on the first call (a scale's shapes never change). If
        capture fails (an allocator or driver without support), evaluate eagerly from then on."""
        if self._graph is None:
            try:
                self._capture(x)
            except Exception:   # any capture failure
                self.use_graph = False
                torch.cuda.synchronize(x.device)
                return False
        return True

    def _evaluate_graphed(self, x: torch.Tensor) -> torch.Tensor:
        """Loss terms and x.grad by replaying the CUDA graph of :meth:`_terms` + backward: that
        skips launching ~300 kernels one by one (measured at 1024 px on an H100: 7.8 → 5.0 ms per
        evaluation)."""
        static_x, static_terms = self._static
        with torch.no_grad():
            static_x.copy_(x)
        self._graph.replay()
        x.grad = static_x.grad.clone()   # the next replay overwrites the static gradient
        return static_terms              # copied to the host (queued) before the next replay

    def _capture(self, x: torch.Tensor) -> None:
        static_x = x.detach().clone().requires_grad_(True)
        current = torch.cuda.current_stream(x.device)
        side = torch.cuda.Stream(x.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):   # warm-up outside the capture: cuDNN/cuBLAS set up kernels
            for _ in range(2):
                static_x.grad = None
                self._terms(static_x)[0].backward()
        current.wait_stream(side)
        static_x.grad = None            # so the captured backward writes the gradient, not adds
        graph = torch.cuda.CUDAGraph()
        # thread_local: other threads of the host (ComfyUI's) may keep using CUDA meanwhile
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            static_terms = self._terms(static_x)
            static_terms[0].backward()
        self._graph, self._static = graph, (static_x, static_terms.detach())

    def _evaluate_tiled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Style and content loss over tiles. With ``x.requires_grad`` their gradient is accumulated
        into ``x.grad`` here, tile by tile; they are returned as constants either way (the caller
        adds and backpropagates only the pixel terms)."""
        # Pass 1 (no gradients): exact global Gram matrices from the tiles' core regions.
        gram_sums = {n: 0.0 for n in self.style_layers}
        positions = {n: 0 for n in self.style_layers}
        with torch.no_grad():
            for tile in self.tiles:
                feats = self._forward(tile.crop(x), self.style_layers)
                for name in self.style_layers:
                    core, _ = tile.core(name, feats[name])
                    f = core.float().flatten(2)[0]               # (C, P)
                    gram_sums[name] = gram_sums[name] + f @ f.T
                    positions[name] += f.shape[1]
        norms = {n: self.grams[n].shape[-1] * positions[n] for n in self.style_layers}   # C·H·W
        grams = {n: (gram_sums[n] / norms[n]).requires_grad_(x.requires_grad) for n in self.style_layers}
        s_loss = self._style_loss(grams)
        if not x.requires_grad:
            with torch.no_grad():
                content = self._features_no_grad(x, [CONTENT_LAYER])[CONTENT_LAYER]
            return content_loss(content, self.content_target) / self.content_scale, s_loss
        d_grams = dict(zip(self.style_layers, torch.autograd.grad(s_loss, list(grams.values()))))
        # Pass 2: each tile backpropagates ⟨∂L/∂G, its share of G⟩ plus its share of the content loss.
        content_numel = self.content_target.numel()
        content_sum = 0.0
        for tile in self.tiles:
            feats = self._forward(tile.crop(x), self.layers)
            share = 0.0
            for name in self.style_layers:
                core, _ = tile.core(name, feats[name])
                f = core.float().flatten(2)[0]
                share = share + (d_grams[name] * (f @ f.T)).sum() / norms[name]
            core, (y0, y1, x0, x1) = tile.core(CONTENT_LAYER, feats[CONTENT_LAYER])
            diff_sq = (core.float() - self.content_target[..., y0:y1, x0:x1]).pow(2).sum()
            content_sum += float(diff_sq.detach())
            share = self.style_weight * share + self.content_weight * diff_sq / (content_numel * self.content_scale)
            share.backward()
        return torch.tensor(content_sum / (content_numel * self.content_scale)), s_loss.detach()


def _losses_later(terms: torch.Tensor) -> Callable[[], dict[str, float]]:
    """terms: (4,) total, content, style, tv on any device → a function returning them by name.
    One read-back of all four numbers (each float() would wait for the device), queued at once
    (:func:`read_later`), before later work can overwrite a CUDA graph's output."""
    read = read_later(terms)

    def losses() -> dict[str, float]:
        result = dict(zip(("total", "content", "style", "tv"), read()))
        if not math.isfinite(result["total"]):
            raise InputError(f"the loss became {result['total']} (NaN/Inf); lower lr or use "
                             f"mixed_precision='off'")
        return result
    return losses


# ----------------------------------------------------------------------------------------------
# tiling


@dataclass(frozen=True)
class _Tile:
    """A core region [y0, y1) × [x0, x1) of the image (multiples of the total stride), and the crop
    around it (the core plus a halo of at least the receptive-field radius, clipped at the image
    border) that the encoder runs on."""
    y0: int
    y1: int
    x0: int
    x1: int
    crop_y0: int
    crop_y1: int
    crop_x0: int
    crop_x1: int
    strides: tuple  # ((layer, stride), ...)

    def stride(self, layer: str) -> int:
        return dict(self.strides)[layer]

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.crop_y0:self.crop_y1, self.crop_x0:self.crop_x1]

    def core(self, layer: str, feats: torch.Tensor):
        """The core's part of the crop's feature map, and where it sits in the whole-image map."""
        s = self.stride(layer)
        fy0, fy1 = self.y0 // s, self.y1 // s
        fx0, fx1 = self.x0 // s, self.x1 // s
        oy, ox = self.crop_y0 // s, self.crop_x0 // s
        return feats[..., fy0 - oy:fy1 - oy, fx0 - ox:fx1 - ox], (fy0, fy1, fx0, fx1)


def receptive_field(encoder: VGGEncoder, layers) -> tuple[int, int]:
    """(radius in px, total stride) of the deepest of ``layers``: a feature depends only on input
    pixels within ``radius`` of its centre."""
    wanted = set(layers)
    radius, stride = 0.0, 1
    found = set()
    for layer in encoder.layers:
        if layer.kind == "conv":
            radius += stride            # 3×3, padding 1
        elif layer.kind == "pool":
            radius += stride / 2        # 2×2, stride 2
            stride *= 2
        found.add(layer.name)
        if wanted <= found:
            break
    return math.ceil(radius), stride


def layer_strides(encoder: VGGEncoder) -> dict[str, int]:
    strides, s = {}, 1
    for layer in encoder.layers:
        if layer.kind == "pool":
            s *= 2
        strides[layer.name] = s
    return strides


def activation_bytes_per_pixel(encoder: VGGEncoder, layers, dtype: torch.dtype | None = None) -> float:
    """Estimated memory of one forward+backward pass per input pixel: every activation up to the
    deepest layer is kept for the backward pass (conv outputs, ReLU outputs, pooling indices)."""
    deepest_index = max(encoder.layer_names.index(n) for n in layers)
    size = torch.finfo(dtype or encoder.dtype).bits // 8
    per_pixel, s = 3 * 4.0, 1
    for layer in encoder.layers[:deepest_index + 1]:
        if layer.kind == "pool":
            per_pixel += layer.out_channels / (2 * s) ** 2 * 8   # int64 indices
            s *= 2
        per_pixel += layer.out_channels / s ** 2 * size
    return per_pixel * _ESTIMATE_SAFETY


def _plan_tiles(encoder, height, width, layers, tile_size, autocast_dtype) -> list[_Tile] | None:
    """None (one pass over the whole image) or the tiles covering it."""
    radius, total_stride = receptive_field(encoder, layers)
    if tile_size == 0:
        budget = memory_budget(encoder.device)   # the project's one activation budget (core.stylize)
        per_pixel = activation_bytes_per_pixel(encoder, layers, autocast_dtype)
        if height * width * per_pixel <= budget:
            return None
        # Largest square core whose crop (core + 2 halos) fits the budget.
        halo = math.ceil(radius / total_stride) * total_stride
        crop_side = int(math.sqrt(budget / per_pixel))
        tile_size = max(total_stride, crop_side - 2 * halo)
    elif height <= tile_size and width <= tile_size:
        return None
    core = max(total_stride, tile_size // total_stride * total_stride)
    halo = math.ceil(radius / total_stride) * total_stride
    strides = tuple(layer_strides(encoder).items())
    tiles = []
    for y0 in range(0, height, core):
        for x0 in range(0, width, core):
            y1, x1 = min(height, y0 + core), min(width, x0 + core)
            tiles.append(_Tile(y0, y1, x0, x1, max(0, y0 - halo), min(height, y1 + halo),
                               max(0, x0 - halo), min(width, x1 + halo), strides))
    return tiles


# ----------------------------------------------------------------------------------------------
# inputs, init, small helpers


def _check_inputs(encoder, content, style, options) -> None:
    if not isinstance(content, torch.Tensor) or content.dim() != 4 or content.shape[1] != 3:
        shape = tuple(content.shape) if isinstance(content, torch.Tensor) else type(content).__name__
        raise InputError(f"content must be RGB images shaped (B, 3, H, W) in [0, 1], got {shape}")
    if content.shape[0] == 0 or content.shape[-1] == 0 or content.shape[-2] == 0:
        raise InputError(f"content batch is empty (shape {tuple(content.shape)})")
    if not torch.isfinite(content).all():
        raise InputError("content image contains NaN or Inf values")
    if not isinstance(style, StyleFeatures):
        raise InputError(f"style must be StyleFeatures (from compute_style_features), got {type(style).__name__}")
    style.check_encoder(encoder)
    missing = [n for n in (CONTENT_LAYER, *style.layers) if n not in encoder.layer_names]
    if missing:
        raise InputError(f"the encoder ({encoder.arch} up to {encoder.deepest}) does not compute layers "
                         f"{missing}; load it with deepest='relu5_1'")
    if options.init == "content_colored" and (style.color_mean is None or style.color_cov is None):
        raise InputError("init='content_colored' needs the style's colour statistics, which these "
                         "StyleFeatures lack; recompute them with compute_style_features")


def _prepare_encoder(encoder: VGGEncoder, mixed_precision: str) -> tuple[VGGEncoder, torch.dtype | None]:
    """The encoder to optimise with (call outside inference mode), and the autocast dtype or None.

    Weights created under inference mode (ComfyUI loads models that way) cannot be saved for
    backward, and bf16 runs want channels-last weights: in both cases use a private copy, so the
    caller's encoder is never changed."""
    autocast_dtype = torch.bfloat16 if _use_bf16(encoder, mixed_precision) else None
    inference = any(t.is_inference() for t in [*encoder.parameters(), *encoder.buffers()])
    if not inference and autocast_dtype is None:
        return encoder, None
    with torch.device(encoder.device):
        clone = VGGEncoder(encoder.arch, encoder.deepest, identity=encoder.identity, source=encoder.source)
    clone.load_state_dict(encoder.state_dict(), strict=True)
    clone = clone.to(dtype=encoder.dtype).eval()
    if autocast_dtype is not None:
        clone = clone.to(memory_format=torch.channels_last)
    return clone, autocast_dtype


def _use_bf16(encoder: VGGEncoder, mixed_precision: str) -> bool:
    if mixed_precision == "off" or encoder.dtype != torch.float32:
        return False   # an fp16/bf16 encoder already runs in half precision
    if mixed_precision == "bf16":
        return True
    if encoder.device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if encoder.device.type == "cpu":
        return cpu_has_fast_bf16()   # AMX: bf16 VGG passes ~2.2x faster; elsewhere bf16 is slower
    return False


def _clone_style(style: StyleFeatures, device) -> StyleFeatures:
    clone = lambda d: {k: v.detach().clone().to(device, torch.float32) for k, v in d.items()}  # noqa: E731
    opt = lambda t: None if t is None else t.detach().clone().to(device, torch.float32)  # noqa: E731
    return dataclasses.replace(style, grams=clone(style.grams), means=clone(style.means),
                               stds=clone(style.stds), color_mean=opt(style.color_mean),
                               color_cov=opt(style.color_cov))


def _resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if images.shape[-2:] == (height, width):
        return images
    down = height < images.shape[-2]
    return F.interpolate(images, size=(height, width), mode="bicubic" if not down else "bilinear",
                         align_corners=False, antialias=down)


def _initial_image(content: torch.Tensor, style: StyleFeatures, init: str,
                   generator: torch.Generator) -> torch.Tensor:
    if init == "content":
        return content.clone()
    if init == "noise":
        noise = torch.rand(content.shape, generator=generator).to(content.device)
        return 0.5 + 0.5 * (noise - 0.5)   # mid-grey ± 0.25: avoids starting at the [0, 1] walls
    return recolor(content, style.color_mean, style.color_cov)


def recolor(images: torch.Tensor, target_mean: torch.Tensor, target_cov: torch.Tensor,
            eps: float = 1e-5) -> torch.Tensor:
    """Give ``images`` (B, 3, H, W) in [0, 1] the RGB mean (3,) and covariance (3, 3) of a palette.

    The linear map x ↦ A (x − μ) + μ_target with A = Σ_target^½ Σ^−½ (symmetric square roots),
    as in Gatys et al., "Preserving Color in Neural Artistic Style Transfer" (2016)."""
    out = []
    mean_t, cov_t = target_mean.float(), target_cov.float()
    for img in images:
        rgb = img.flatten(1).float()                        # (3, P)
        mean = rgb.mean(1)
        centred = rgb - mean[:, None]
        cov = centred @ centred.T / rgb.shape[1]
        a = _sqrtm(cov_t, eps) @ torch.linalg.inv(_sqrtm(cov, eps))
        out.append((a @ centred + mean_t[:, None]).view_as(img))
    return torch.stack(out).clamp(0, 1)


def _sqrtm(cov: torch.Tensor, eps: float) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(cov + eps * torch.eye(3, device=cov.device))
    return vectors @ torch.diag(values.clamp_min(eps).sqrt()) @ vectors.T


def evaluate_losses(encoder: VGGEncoder, image: torch.Tensor, content: torch.Tensor,
                    style: StyleFeatures, options: OptimizeOptions | None = None) -> dict[str, float]:
    """The loss terms of :func:`optimize_stylize` for ``image`` (1, 3, H, W) against ``content``
    (resized to H×W), in fp32 — e.g. to compare results of different settings on the same terms."""
    options = (options or OptimizeOptions()).checked()
    _check_inputs(encoder, content, style, options)
    with torch.inference_mode(False), torch.no_grad():
        device = encoder.device
        h, w = image.shape[-2:]
        target = _resize(content[:1].detach().clone().to(device, torch.float32), h, w).clamp(0, 1)
        objective = StyleObjective(encoder, target, **_objective_settings(_clone_style(style, device), options, None))
        return objective.evaluate(image[:1].detach().clone().to(device, torch.float32))
