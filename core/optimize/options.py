"""The optimiser's settings (:class:`OptimizeOptions`, the one declaration of every option: the
ComfyUI node and the demo derive theirs from it) and its coarse-to-fine schedule
(:func:`plan_scales`)."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..color import COLOR_MODES
from ..config import bounded, config_from_dict
from ..device import MIXED_PRECISION_MODES

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "content_colored")
PRECONDITIONERS = ("spectral", "none")


@dataclass
class OptimizeOptions:
    """Settings of :func:`~ganstyle.core.optimize.optimize_stylize`. Defaults give a good result
    at any resolution. Each field's ``doc`` is also the tooltip of the node input built from it."""
    steps: int = bounded(100, 1, 100_000, doc="Loss evaluations at the coarsest scale; each finer "
                         "scale runs half as many (at least min_steps, or steps if fewer). More = "
                         "closer match, slower.")
    long_side: int = bounded(512, 0, 16384, doc="Output size: pixels on the long side (0 = the "
                             "content's size). Optimised coarse to fine, from start_side up.")
    start_side: int = bounded(256, 16, 16384, doc="Long side of the coarsest scale; scales double "
                              "up to long_side. Smaller = larger style structures and faster; "
                              "set to long_side for a single scale.")
    min_steps: int = bounded(20, 1, 100_000, doc="Fewest loss evaluations at any scale.")
    optimizer: str = bounded("lbfgs", choices=OPTIMIZERS, doc="L-BFGS converges in far fewer "
                             "steps; Adam uses less memory at very large sizes.")
    lr: float = bounded(0.0, 0.0, 10.0, doc="Step size; 0 = the optimiser's default (L-BFGS 1.0, "
                        "the full quasi-Newton step; Adam 0.02 in [0, 1] pixel units).")
    content_weight: float = bounded(1.0, 0.0, 1e6, doc="How strongly the result keeps the content's "
                                    "shapes (weight of the relative relu4_2 error). Losses are "
                                    "normalised, so the same weights suit every size.")
    style_weight: float = bounded(1.0, 0.0, 1e6, doc="How strongly the result takes the style's "
                                  "textures (weight of the relative Gram error). Raise for more "
                                  "style, lower to keep the scene readable.")
    tv_weight: float = bounded(0.1, 0.0, 1e6, doc="Total-variation smoothing (mean |pixel step|): "
                               "removes pixel noise; too high blurs fine texture.")
    style_layer_weights: dict | None = bounded(None, doc="{layer: weight}; None = equal weights "
                                              "over the style's layers.")
    init: str = bounded("content", choices=INITS, doc="Start image: the content, random noise, or "
                        "the content recoloured with the style's palette.")
    color_mode: str = bounded("none", choices=COLOR_MODES, doc="Keep the content's colours: "
                              "'luminance' takes only the style's light/dark texture; 'histogram' "
                              "matches the result's colour statistics to the content.")
    seed: int = bounded(0, 0, 2**63 - 1, doc="Seed of the noise init (the result is otherwise "
                        "deterministic).")
    mixed_precision: str = bounded("auto", choices=MIXED_PRECISION_MODES,
                                   doc="'auto': bf16 VGG where fast (CUDA, CPUs with AMX); "
                                   "'bf16': always; 'fp32': never.")
    preview_every: int = bounded(10, 0, 100_000, doc="Pass a preview image to the progress "
                                 "callback (the node: show it on the progress bar) every N steps "
                                 "(0 = never).")
    tile_size: int = bounded(0, 0, 16384, doc="Core tile side in px for the tiled loss; 0 = auto "
                             "(tile only when one pass would not fit the memory budget).")
    cuda_graph: bool = bounded(True, doc="On CUDA, replay each scale's loss evaluation as a CUDA "
                               "graph (faster; falls back to plain evaluation if capture fails).")
    precondition: str = bounded("spectral", choices=PRECONDITIONERS, doc="L-BFGS: 'spectral' "
                                "optimises through a low-pass filter that lets large areas move as "
                                "fast as fine detail (fewer steps for the same loss); 'none': raw pixels.")
    history_size: int = bounded(0, 0, 200, doc="L-BFGS history length, each entry 2 image-sized "
                                "vectors; 0 = auto: 20 (on a CPU as many as fit a quarter of the "
                                "memory budget, 10 to 20).")

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

    def checked(self) -> OptimizeOptions:
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
