"""OptimizeStylize node: a thin wrapper over core.optimize (Gatys et al. optimisation)."""
from __future__ import annotations

import torch

from ..core.images import bchw_to_comfy, comfy_to_bchw
from ..core.optimize import OptimizeOptions, optimize_stylize, optimize_video
from . import comfy_env
from .options import option_inputs, options_from_inputs

# Widget order is part of saved UI workflows: append new inputs at the end of OPTIONAL.
REQUIRED = ("steps", "long_side", "content_weight", "style_weight", "tv_weight", "init",
            ("preserve_color", "color_mode"), "seed")
OPTIONAL = ("optimizer", "start_side", "preview_every")
WIDGETS = {"long_side": {"step": 16}, "start_side": {"step": 16},
           "content_weight": {"step": 0.05}, "style_weight": {"step": 0.05}, "tv_weight": {"step": 0.05},
           # ComfyUI's seed widgets span 64 bits; the node folds the seed into the option's range
           "seed": {"max": 0xFFFFFFFFFFFFFFFF}}


class OptimizeStylize:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "encoder": ("VGG_ENCODER", {"tooltip": "From Load VGG Encoder (ganstyle); must be the encoder the style "
                                                   "features were computed with."}),
            "content": ("IMAGE", {"tooltip": "The image(s) to stylise. A batch is processed one image at a time."}),
            "style": ("STYLE_FEATURES", {"tooltip": "From Style Features (ganstyle): one or several blended "
                                                    "style images."}),
            **option_inputs(OptimizeOptions, REQUIRED, WIDGETS),
        }, "optional": {**option_inputs(OptimizeOptions, OPTIONAL, WIDGETS),
                         "temporal_weight": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 100000.0, "step": 10.0,
                                                       "tooltip": "0 = every image on its own. Above 0 the batch is "
                                                       "a video clip: each frame starts from the previous result "
                                                       "moved along the optical flow and is held to it where the "
                                                       "scene is visible in both (Ruder et al.); 500 is a good "
                                                       "start. 'steps' evaluations per frame."})}}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    OUTPUT_TOOLTIPS = ("The stylised image(s), long side = long_side.",)
    FUNCTION = "stylize"
    CATEGORY = comfy_env.CATEGORY
    DESCRIPTION = ("Optimisation-based style transfer (Gatys et al.): optimises the image itself so its VGG "
                   "features match the content and the style's Gram matrices. Slowest mode, best quality; "
                   "works at print sizes (coarse to fine, tiled when memory is short). Cancel stops it at the "
                   "next step. Previews show the image at the size being optimised (coarse stages are smaller), "
                   "at most 512 px on the long side.")

    @comfy_env.reports_user_errors
    def stylize(self, encoder, content, style, temporal_weight=0.0, **inputs):
        inputs["seed"] = inputs.get("seed", 0) % 2**63
        options = options_from_inputs(OptimizeOptions, REQUIRED + OPTIONAL, inputs)
        bar = None

        def progress(step, total, losses, preview):
            nonlocal bar
            comfy_env.throw_if_interrupted()   # the user's Cancel: raises, stops at this step
            bar = bar or comfy_env.Progress(total)
            bar.update(step, preview)

        frames = comfy_to_bchw(content)
        if temporal_weight > 0 and frames.shape[0] > 1:
            results = []
            for result in optimize_video(encoder, frames.unbind(0), style, options, temporal_weight,
                                         progress=progress):
                results.append(result)
                bar = None   # each frame gets its own bar (its own step count); Cancel works within and between
            return (bchw_to_comfy(torch.cat(results)),)
        images = optimize_stylize(encoder, frames, style, options, progress=progress)
        return (bchw_to_comfy(images),)


NODE_CLASS_MAPPINGS = {"OptimizeStylize": OptimizeStylize}
NODE_DISPLAY_NAME_MAPPINGS = {"OptimizeStylize": "Optimize Stylize (Gatys, ganstyle)"}
