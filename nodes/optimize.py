"""OptimizeStylize node: a thin wrapper over core.optimize (Gatys et al. optimisation)."""
from __future__ import annotations

from ..core.images import bchw_to_comfy, comfy_to_bchw
from ..core.optimize import INITS, OPTIMIZERS, OptimizeOptions, optimize_stylize
from ..core.color import COLOR_MODES
from . import comfy_env

_DEFAULTS = OptimizeOptions()


class OptimizeStylize:
    @classmethod
    def INPUT_TYPES(cls):
        d = _DEFAULTS
        return {"required": {
            "encoder": ("VGG_ENCODER", {"tooltip": "From Load VGG Encoder; must be the encoder the style features were computed with."}),
            "content": ("IMAGE", {"tooltip": "The image(s) to stylise. A batch is processed one image at a time."}),
            "style": ("STYLE_FEATURES", {"tooltip": "From Style Features (one or several blended style images)."}),
            "steps": ("INT", {"default": d.steps, "min": 1, "max": 5000, "tooltip": "Loss evaluations at the coarsest scale; each finer scale runs half as many (at least 20, or steps if fewer). More = closer match, slower."}),
            "long_side": ("INT", {"default": d.long_side, "min": 0, "max": 8192, "step": 16, "tooltip": "Output size: pixels on the long side (0 = the content's size). Optimised coarse to fine, from 256 px up."}),
            "content_weight": ("FLOAT", {"default": d.content_weight, "min": 0.0, "max": 1000.0, "step": 0.05, "tooltip": "How strongly the result keeps the content's shapes. Losses are normalised, so the same weights suit every size."}),
            "style_weight": ("FLOAT", {"default": d.style_weight, "min": 0.0, "max": 1000.0, "step": 0.05, "tooltip": "How strongly the result takes the style's textures. Raise for more style, lower to keep the scene readable."}),
            "tv_weight": ("FLOAT", {"default": d.tv_weight, "min": 0.0, "max": 1000.0, "step": 0.05, "tooltip": "Total-variation smoothing: removes pixel noise; too high blurs fine texture."}),
            "init": (list(INITS), {"default": d.init, "tooltip": "Start image: the content, random noise, or the content recoloured with the style's palette."}),
            "preserve_color": (list(COLOR_MODES), {"default": d.color_mode, "tooltip": "Keep the content's colours: 'luminance' takes only the style's light/dark texture; 'histogram' matches the result's colour statistics to the content."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "tooltip": "Seed of the noise init (the result is otherwise deterministic)."}),
        }, "optional": {
            "optimizer": (list(OPTIMIZERS), {"default": d.optimizer, "tooltip": "L-BFGS converges in far fewer steps; Adam uses less memory at very large sizes."}),
            "start_side": ("INT", {"default": d.start_side, "min": 32, "max": 8192, "step": 16, "tooltip": "Long side of the coarsest scale. Smaller = larger style structures and faster; set to long_side for a single scale."}),
            "preview_every": ("INT", {"default": 10, "min": 0, "max": 1000, "tooltip": "Show a preview on the progress bar every N steps (0 = never)."}),
        }}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    OUTPUT_TOOLTIPS = ("The stylised image(s), long side = long_side.",)
    FUNCTION = "stylize"
    CATEGORY = comfy_env.CATEGORY
    DESCRIPTION = ("Optimisation-based style transfer (Gatys et al.): optimises the image itself so its VGG "
                   "features match the content and the style's Gram matrices. Slowest mode, best quality; "
                   "works at print sizes (coarse to fine, tiled when memory is short). Cancel stops it at the next step.")

    @comfy_env.reports_user_errors
    def stylize(self, encoder, content, style, steps, long_side, content_weight, style_weight, tv_weight,
                init, preserve_color, seed, optimizer=_DEFAULTS.optimizer, start_side=_DEFAULTS.start_side,
                preview_every=10):
        options = OptimizeOptions(
            steps=steps, long_side=long_side, start_side=start_side, optimizer=optimizer,
            content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
            init=init, color_mode=preserve_color, seed=seed % 2**63, preview_every=preview_every)
        bar = None

        def progress(step, total, losses, preview):
            nonlocal bar
            comfy_env.throw_if_interrupted()   # the user's Cancel: raises, stops at this step
            bar = bar or comfy_env.Progress(total)
            bar.update(step, preview)

        images = optimize_stylize(encoder, comfy_to_bchw(content), style, options, progress=progress)
        return (bchw_to_comfy(images),)


NODE_CLASS_MAPPINGS = {"OptimizeStylize": OptimizeStylize}
NODE_DISPLAY_NAME_MAPPINGS = {"OptimizeStylize": "Optimize Stylize (Gatys)"}
