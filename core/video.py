"""Stylising video without flicker: a trained style model over a stream of frames.

Stylised one by one, frames flicker: instance norm renormalises every frame with its own
statistics (tone and colour pump), and textures are re-invented each frame (they crawl). Two
remedies, both cheap:

1. **Clip statistics** (``statistics="clip"``): the norm statistics of the first
   ``statistics_frames`` frames are pooled (mean of their means, and the variance of the union)
   and then used, frozen, for every frame (:class:`~ganstyle.core.norm_statistics.NormStatistics`).
2. **Temporal blending** (``temporal`` > 0): the previous stylised frame, moved into the current
   one by the optical flow of the input frames (:mod:`ganstyle.core.flow`), is blended in with
   weight ``temporal`` wherever the forward and backward flows agree (elsewhere, e.g. where the
   scene was hidden, the frame's own result is used). Textures then stay attached to the scene.

Frames stream through :class:`VideoStylizer` one at a time, so a clip of any length runs in the
memory of one frame (plus the previous one). Its settings travel whole: :class:`VideoOptions` (the
temporal ones) and :class:`~ganstyle.core.stylize.StylizeOptions` (strength, colour mode, palette,
precision), each checked once, by its ``checked()``.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from .color import apply_color_mode, map_between, match_palette
from .config import bounded, check_options
from .decoder import EncoderDecoder
from .decoder_stylize import ClipMoments, stylize_encoder_decoder
from .device import resolve_device, resolve_dtype
from .errors import InputError
from .flow import PRESETS, FlowEstimator, occlusion_mask, warp_by_flow
from .generator import StyleGenerator
from .model_copies import prepare_model
from .norm_statistics import NormStatistics
from .style_choice import StyleSpec, conditioned
from .stylize import StylizeOptions, style_palettes

STATISTICS = ("clip", "frame")


@dataclass
class VideoOptions:
    """The settings of :class:`VideoStylizer`, declared once (node inputs and CLI flags)."""
    temporal: float = bounded(0.5, 0.0, 0.98, doc="How much of the previous stylised frame, moved along the "
                              "optical flow, is kept where the scene is visible in both frames: 0 = every frame "
                              "on its own (flickers), 0.5-0.8 = steady textures, higher = smoother but trails.")
    statistics: str = bounded("clip", choices=STATISTICS, doc="clip: the normalisation statistics of the first "
                              "frames serve the whole clip, so tone and colour do not pump; frame: each frame its "
                              "own (for cuts between unrelated scenes).")
    statistics_frames: int = bounded(8, 1, 10_000, doc="How many frames at the start make the clip's statistics.")
    flow_preset: str = bounded("fast", choices=PRESETS, doc="OpenCV DIS optical-flow preset: ultrafast, fast, "
                               "medium or fine (each slower and more accurate than the one before).")

    def checked(self) -> VideoOptions:
        """These options, every field checked against its declared bounds or choices; a bad value
        raises :class:`~ganstyle.core.config.OptionError` naming the field, e.g. ``"temporal is
        0.99, must be at most 0.98"``."""
        return check_options(self)


class VideoStylizer:
    """Call with each frame in order; returns its stylised frame.

    model: a style model or generator; frame: (1, 3, H, W) or (3, H, W) float in [0, 1], every
    frame the same size. Returns (1, 3, H, W) float32 in [0, 1] on the CPU.
    options: the temporal settings (:class:`VideoOptions`); stylize_options: strength,
    color_mode, palette and precision as for :func:`~ganstyle.core.stylize.stylize` (a frame runs
    whole: the tile settings do not apply); both checked here, a bad value raises
    :class:`~ganstyle.core.config.OptionError` naming the field. ``strength``, ``color_mode`` and
    ``palette`` are shortcuts: given (not None), each replaces that field of ``stylize_options``.
    style: as for :func:`~ganstyle.core.stylize.stylize`; dtype: a precision name or torch dtype
    overriding ``stylize_options.precision``. The palette is matched before the temporal blend,
    with one colour map for the clip under clip statistics (per frame under
    ``statistics="frame"``).
    """

    def __init__(self, model, options: VideoOptions | None = None, stylize_options: StylizeOptions | None = None,
                 *, style: StyleSpec | None = None, device=None, dtype=None, strength: float | None = None,
                 color_mode: str | None = None, palette: float | None = None):
        self.options = (options or VideoOptions()).checked()
        self.stylize_options = stylizing = (stylize_options or StylizeOptions()).replaced(
            strength=strength, color_mode=color_mode, palette=palette).checked()
        self.palettes = style_palettes(style, (), stylizing)
        self.palette = float(stylizing.palette)
        self._colour_frames: list[tuple[torch.Tensor, torch.Tensor]] = []   # (mean, second moment) pooled
        self._colour_maps = None
        generator = getattr(model, "generator", model)
        self.strength, self.color_mode = float(stylizing.strength), stylizing.color_mode
        self.encoder_decoder = None
        if isinstance(generator, EncoderDecoder):
            # fused level by level: strength acts in feature space, clip statistics are feature moments
            self.encoder_decoder, self.style, self.strength = generator, style, 1.0
            self.feature_strength = float(stylizing.strength)
            self.clip_moments = ClipMoments(self.options.statistics_frames)
        elif not isinstance(generator, StyleGenerator):
            raise InputError(f"expected a style model (StyleGenerator), got {type(model).__name__}")
        else:
            generator, _ = conditioned(generator, (1, 1), 1, style)
        self.device = resolve_device(device) if device is not None else next(generator.parameters()).device
        self.dtype = resolve_dtype(stylizing.precision if dtype is None else dtype, self.device)
        self.runner = None if self.encoder_decoder else prepare_model(generator, self.device, self.dtype)
        self.flow = FlowEstimator(self.options.flow_preset) if self.options.temporal > 0 else None
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self.clip_stats: NormStatistics | None = None
        self._pooled: dict = {}
        self.previous_frame: torch.Tensor | None = None
        self.previous_result: torch.Tensor | None = None

    @torch.inference_mode()
    def __call__(self, frame: torch.Tensor) -> torch.Tensor:
        frame = self._checked(frame)
        flows = None
        if self.flow is not None and self.previous_result is not None:
            # the two flows run in a thread (OpenCV releases the GIL) while the network runs here
            previous = self.previous_frame
            flows = self._pool_thread().submit(lambda: (self.flow(frame, previous), self.flow(previous, frame)))
        result = self._network(frame)
        if self.palettes:
            result = match_palette(result, self.palettes, self.palette, maps=self._clip_colour_maps(result))
        if self.color_mode != "none":
            result = apply_color_mode(result, frame, self.color_mode).clamp_(0, 1)
        if self.strength < 1.0:
            result = torch.lerp(frame, result, self.strength)
        if flows is not None:
            to_previous, to_current = flows.result()                     # t → t-1, t-1 → t
            keep = self.options.temporal * (1.0 - occlusion_mask(to_previous, to_current))
            moved = warp_by_flow(self.previous_result, to_previous, mode="bicubic").clamp_(0, 1)
            result = torch.lerp(result, moved, keep[None, None])
        self.previous_frame, self.previous_result = frame, result
        self.frames += 1
        return result

    def _pool_thread(self):
        if getattr(self, "_executor", None) is None:
            from concurrent.futures import ThreadPoolExecutor
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="ganstyle-flow")
        return self._executor

    def close(self) -> None:
        """Stop the flow thread (also done when the stylizer is garbage-collected)."""
        if getattr(self, "_executor", None) is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __del__(self):
        self.close()

    def _clip_colour_maps(self, result: torch.Tensor):
        """With clip statistics, one colour map for the whole clip (as the norm statistics are
        one): from the colours of the first ``statistics_frames`` results pooled, then frozen, so
        the palette does not pump when the scene brightens. None (per frame) otherwise."""
        if self.options.statistics == "frame":
            return None
        if len(self._colour_frames) < self.options.statistics_frames:
            x = result.flatten(2).float()[0]                                 # (3, P)
            self._colour_frames.append((x.mean(1), x @ x.T / x.shape[1]))
            mean = torch.stack([m for m, _ in self._colour_frames]).mean(0)
            moment = torch.stack([m for _, m in self._colour_frames]).mean(0)
            cov = moment - torch.outer(mean, mean)
            self._colour_maps = [map_between(mean[None], cov[None], m, c) for m, c in self.palettes]
        return self._colour_maps

    def _checked(self, frame: torch.Tensor) -> torch.Tensor:
        if not isinstance(frame, torch.Tensor) or frame.dim() not in (3, 4) or frame.shape[-3] != 3:
            shape = tuple(frame.shape) if isinstance(frame, torch.Tensor) else type(frame).__name__
            raise InputError(f"a frame must be (3, H, W) or (1, 3, H, W), got {shape}")
        frame = (frame[None] if frame.dim() == 3 else frame).float().cpu().clamp(0, 1)
        if frame.shape[0] != 1:
            raise InputError(f"frames go in one at a time, got a batch of {frame.shape[0]}")
        size = tuple(frame.shape[-2:])
        if self.size is None:
            self.size = size
        elif size != self.size:
            raise InputError(f"frame {self.frames + 1} is {size[1]}×{size[0]}, the clip is "
                             f"{self.size[1]}×{self.size[0]}: every frame must have the same size")
        return frame

    def _network(self, frame: torch.Tensor) -> torch.Tensor:
        if self.encoder_decoder is not None:
            clip = self.clip_moments if self.options.statistics == "clip" else None
            return stylize_encoder_decoder(self.encoder_decoder, frame, self.style, strength=self.feature_strength,
                                           device=self.device, dtype=self.dtype, clip=clip)
        x = frame.to(self.device, self.dtype)
        if self.options.statistics == "frame":
            return self.runner(x).float().cpu()
        pooling = self.frames < self.options.statistics_frames    # still pooling the clip's statistics
        own = NormStatistics() if pooling else None
        if self.clip_stats is None:                               # the first frame: its own statistics
            with own.record():
                result = self.runner(x)
        else:   # the clip's statistics so far; the frame's own are measured in the same pass
            with self.clip_stats.frozen(record_into=own):
                result = self.runner(x)
        if pooling:
            self._pool(own)
        return result.float().cpu()

    def _pool(self, own: NormStatistics) -> None:
        """Add one frame's statistics to the clip's: running mean of the means, and the variance
        of all pooled pixels (within-frame variance plus the spread of the frame means)."""
        n = self.frames
        for module, (mean, var) in own.stats.items():
            if module not in self._pooled:
                self._pooled[module] = (mean, var + mean * mean)
            else:
                m0, s0 = self._pooled[module]
                self._pooled[module] = ((m0 * n + mean) / (n + 1), (s0 * n + var + mean * mean) / (n + 1))
        self.clip_stats = NormStatistics()
        for module, (mean, second) in self._pooled.items():
            self.clip_stats.stats[module] = (mean, (second - mean * mean).clamp(min=0))


def stylize_frames(model, frames: Iterable[torch.Tensor], options: VideoOptions | None = None,
                   stylize_options: StylizeOptions | None = None, **kwargs) -> Iterator[torch.Tensor]:
    """Stylise a stream of frames (see :class:`VideoStylizer`, which takes ``kwargs``), yielding
    each result in turn."""
    stylizer = VideoStylizer(model, options, stylize_options, **kwargs)
    try:
        for frame in frames:
            yield stylizer(frame)
    finally:
        stylizer.close()
