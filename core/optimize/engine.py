"""The optimisation loop: :func:`optimize_stylize` runs each image coarse to fine, each scale a
fixed number of loss evaluations of L-BFGS (through the spectral preconditioner) or Adam, and
reports every evaluation to a progress callback; :func:`evaluate_losses` gives the same loss terms
for any image.

It runs inside ``torch.inference_mode()`` (ComfyUI calls nodes that way): autograd is re-enabled
locally and inference tensors (inputs, style targets, encoder weights made under inference mode)
are cloned into ordinary tensors first.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..color import apply_color_mode, recolor
from ..device import cpu_has_fast_bf16, memory_budget
from ..errors import InputError
from ..features import StyleFeatures
from ..vgg import VGGEncoder, has_inference_tensors, private_copy
from .lbfgs import lbfgs
from .objective import StyleObjective, check_inputs, clone_style, objective_settings
from .options import OptimizeOptions, Scale, plan_scales
from .preconditioner import SpectralPreconditioner

# Mean size of the first L-BFGS step (a gradient step) per pixel value.
_FIRST_STEP = 0.01


class StyleTransferCancelled(Exception):
    """Raise this (or any exception) from a progress callback to abort :func:`optimize_stylize`."""


# progress(step, total, losses, preview) → truthy to stop early and return the image as it is.
# ``losses``: {"total", "content", "style", "tv"} floats; ``preview``: (1, 3, h, w) in [0, 1] or None.
ProgressCallback = Callable[[int, int, dict, "torch.Tensor | None"], "bool | None"]


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
    check_inputs(encoder, content, style, options)
    with torch.inference_mode(False), torch.enable_grad():
        encoder, autocast_dtype = _prepare_encoder(encoder, options.mixed_precision)
        device = encoder.device
        style = clone_style(style, device)
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


def optimize_video(encoder: VGGEncoder, frames, style: StyleFeatures, options: OptimizeOptions | None = None,
                   temporal_weight: float = 1.0, progress: ProgressCallback | None = None,
                   flow_preset: str = "fine"):
    """Stylise a clip by optimisation, steadily (Ruder et al. 2016, "Artistic style transfer for
    videos"): every frame after the first starts from the previous result moved along the optical
    flow (the frame's content where the scene was hidden) and its loss adds ``temporal_weight`` ×
    the squared difference to that moved result over the pixels visible in both frames. The
    flow is DIS's ``"fine"`` preset by default: the steadiness of the result is bounded by the
    flow's accuracy (E_warp on bench_video's synthetic clip: fast 0.82×, medium 0.42× of per-frame
    at 256×160), and even fine flow costs little beside one optimisation step.

    frames: an iterable of (1, 3, H, W) or (3, H, W) in [0, 1], all the same size. Yields each
    result (1, 3, h, w) on the CPU, ``options.steps`` evaluations per frame (the first frame runs
    the usual coarse-to-fine plan). ``progress`` is called per evaluation as for
    :func:`optimize_stylize`, with ``step``/``total`` counted within the current frame; raising
    cancels.
    """
    from ..flow import FlowEstimator, occlusion_mask, warp_by_flow

    options = (options or OptimizeOptions()).checked()
    flow = FlowEstimator(flow_preset) if temporal_weight > 0 else None
    previous_content = previous_result = None
    for index, frame in enumerate(frames):
        frame = (frame[None] if frame.dim() == 3 else frame).float()
        if previous_result is None:
            result = optimize_stylize(encoder, frame, style, options, progress)
        else:
            h, w = previous_result.shape[-2:]
            content = _resize(frame.to(encoder.device), h, w).clamp(0, 1)
            if content.shape != previous_content.shape:
                raise InputError(f"frame {index + 1} has another size than the frames before it")
            result = _video_frame(encoder, content, previous_content, previous_result, style, options,
                                  temporal_weight, flow, occlusion_mask, warp_by_flow, progress)
        previous_content = _resize(frame.to(encoder.device), *result.shape[-2:]).clamp(0, 1)
        previous_result = result.to(encoder.device)
        yield result.cpu()


def _video_frame(encoder, content, previous_content, previous_result, style, options, temporal_weight, flow,
                 occlusion_mask, warp_by_flow, progress):
    check_inputs(encoder, content, style, options)
    with torch.inference_mode(False), torch.enable_grad():
        encoder_, autocast_dtype = _prepare_encoder(encoder, options.mixed_precision)
        to_previous, to_current = flow(content, previous_content), flow(previous_content, content)
        visible = (1.0 - occlusion_mask(to_previous, to_current)).to(encoder_.device)[None, None]
        moved = warp_by_flow(previous_result.float(), to_previous, mode="bicubic").clamp(0, 1).to(encoder_.device)
        start = visible * moved + (1 - visible) * content           # Ruder et al.'s initialisation
        objective = StyleObjective(encoder_, content, **objective_settings(clone_style(style, encoder_.device),
                                                                             options, autocast_dtype))
        objective.set_temporal(moved, temporal_weight * visible)
        counter = _Counter(options.steps, progress, options.preview_every)
        counter.begin_scale(options.steps)
        x = _run_optimizer(objective, start, options.steps, options, counter)
        return apply_color_mode(x.detach().clamp(0, 1), content, options.color_mode)


def evaluate_losses(encoder: VGGEncoder, image: torch.Tensor, content: torch.Tensor,
                    style: StyleFeatures, options: OptimizeOptions | None = None) -> dict[str, float]:
    """The loss terms of :func:`optimize_stylize` for ``image`` (1, 3, H, W) against ``content``
    (resized to H×W), in fp32 — e.g. to compare results of different settings on the same terms."""
    options = (options or OptimizeOptions()).checked()
    check_inputs(encoder, content, style, options)
    with torch.inference_mode(False), torch.no_grad():
        device = encoder.device
        h, w = image.shape[-2:]
        target = _resize(content[:1].detach().clone().to(device, torch.float32), h, w).clamp(0, 1)
        objective = StyleObjective(encoder, target, **objective_settings(clone_style(style, device), options, None))
        return objective.evaluate(image[:1].detach().clone().to(device, torch.float32))


# ----------------------------------------------------------------------------------------------
# one image


def _stylize_one(encoder, content, style, options: OptimizeOptions, plan: list[Scale], generator,
                 counter: _Counter, autocast_dtype) -> torch.Tensor:
    """content: (1, 3, H, W) fp32 on the encoder's device → (1, 3, h, w) of the last scale.

    The first scale starts from ``options.init``; each later one from the content of its own size
    plus the upsampled stylisation (result − content) of the scale before: the new scale starts
    with the content's fine detail instead of a blurred copy (a lower final loss than upsampling
    the result itself)."""
    objective_kw = objective_settings(style, options, autocast_dtype)
    x = prev_content = None
    for scale in plan:
        target = _resize(content, scale.height, scale.width).clamp(0, 1)
        if x is None:
            x = _initial_image(target, style, options.init, generator)
        else:
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


def _run_optimizer(objective: StyleObjective, x0: torch.Tensor, steps: int, options: OptimizeOptions,
                   counter: _Counter) -> torch.Tensor:
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


def _auto_history(values: int, device: torch.device) -> int:
    """L-BFGS history length: 20 pairs (more did not pay: docs/benchmarks.md). On a CPU at most
    as many pairs as fit a quarter of the memory budget (at least 10)."""
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
# encoder, init, resizing


def _prepare_encoder(encoder: VGGEncoder, mixed_precision: str) -> tuple[VGGEncoder, torch.dtype | None]:
    """The encoder to optimise with (call outside inference mode), and the autocast dtype or None.

    Weights created under inference mode (ComfyUI loads models that way) cannot be saved for
    backward, and bf16 runs want channels-last weights: in both cases use a private copy, so the
    caller's encoder is never changed."""
    autocast_dtype = torch.bfloat16 if _use_bf16(encoder, mixed_precision) else None
    if not has_inference_tensors(encoder) and autocast_dtype is None:
        return encoder, None
    clone = private_copy(encoder)
    if autocast_dtype is not None:
        clone = clone.to(memory_format=torch.channels_last)
    return clone, autocast_dtype


def _use_bf16(encoder: VGGEncoder, mixed_precision: str) -> bool:
    """bf16 autocast where it is fast: CUDA GPUs with bf16 and CPUs with AMX (elsewhere bf16 is
    slower than fp32); never for an encoder that is already fp16/bf16."""
    if mixed_precision == "fp32" or encoder.dtype != torch.float32:
        return False
    if mixed_precision == "bf16":
        return True
    if encoder.device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if encoder.device.type == "cpu":
        return cpu_has_fast_bf16()
    return False


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
