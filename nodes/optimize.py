"""OptimizeStylize node: a thin wrapper over core.optimize (Gatys et al. optimisation)."""
from __future__ import annotations

import torch

from ..core.images import bchw_to_comfy, comfy_to_bchw
from ..core.optimize import OptimizeOptions, optimize_stylize, optimize_video
from . import comfy_env
from .comfy_env import io
from .encoder import StyleFeaturesType, VGGEncoder
from .options import option_inputs, options_from_inputs

# Widget order is part of saved UI workflows: append new inputs at the end of OPTIONAL.
REQUIRED = ("steps", "long_side", "content_weight", "style_weight", "tv_weight", "init",
            ("preserve_color", "color_mode"), "seed")
OPTIONAL = ("optimizer", "start_side", "preview_every")
WIDGETS = {"long_side": {"step": 16}, "start_side": {"step": 16},
           "content_weight": {"step": 0.05}, "style_weight": {"step": 0.05}, "tv_weight": {"step": 0.05},
           # ComfyUI's seed widgets span 64 bits; the node folds the seed into the option's range
           "seed": {"max": 0xFFFFFFFFFFFFFFFF}}


class OptimizeStylize(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="OptimizeStylize", display_name="Optimize Stylize (Gatys, ganstyle)",
            category=comfy_env.CATEGORY,
            description="Optimisation-based style transfer (Gatys et al.): optimises the image itself so its VGG "
                        "features match the content and the style's Gram matrices. Slowest mode, best quality; "
                        "works at print sizes (coarse to fine, tiled when memory is short). Cancel stops it at the "
                        "next step. Previews show the image at the size being optimised (coarse stages are "
                        "smaller), at most 512 px on the long side.",
            inputs=[
                VGGEncoder.Input("encoder", tooltip="From Load VGG Encoder (ganstyle); must be the encoder the "
                                                    "style features were computed with."),
                io.Image.Input("content", tooltip="The image(s) to stylise. A batch is processed one image at a "
                                                  "time."),
                StyleFeaturesType.Input("style", tooltip="From Style Features (ganstyle): one or several blended "
                                                         "style images."),
                *option_inputs(OptimizeOptions, REQUIRED, WIDGETS),
                *option_inputs(OptimizeOptions, OPTIONAL, WIDGETS, optional=True),
                io.Float.Input("temporal_weight", optional=True, default=0.0, min=0.0, max=100000.0, step=10.0,
                               tooltip="0 = every image on its own. Above 0 the batch is a video clip: each frame "
                                       "starts from the previous result moved along the optical flow and is held "
                                       "to it where the scene is visible in both (Ruder et al.); 500 is a good "
                                       "start. 'steps' evaluations per frame."),
            ],
            outputs=[io.Image.Output(
                "image", display_name="image",
                tooltip="The stylised image(s), long side = long_side.")])

    @classmethod
    @comfy_env.reports_user_errors
    def execute(cls, encoder, content, style, temporal_weight=0.0, **inputs):
        inputs["seed"] = inputs.get("seed", 0) % 2**63
        options = options_from_inputs(OptimizeOptions, REQUIRED + OPTIONAL, inputs)
        return io.NodeOutput(bchw_to_comfy(optimize_images(encoder, comfy_to_bchw(content), style, options,
                                                           temporal_weight)))


def optimize_images(encoder, frames: torch.Tensor, style, options: OptimizeOptions, temporal_weight: float):
    """Optimize Stylize's run on (B, 3, H, W) ``frames``: each image on its own, or a clip
    (``temporal_weight`` > 0), with a progress bar, previews and Cancel; (B, 3, h, w) out."""
    bar = None

    def progress(step, total, losses, preview):
        nonlocal bar
        comfy_env.throw_if_interrupted()   # the user's Cancel: raises, stops at this step
        bar = bar or comfy_env.Progress(total)
        bar.update(step, preview)

    if temporal_weight > 0 and frames.shape[0] > 1:
        results = []
        for result in optimize_video(encoder, frames.unbind(0), style, options, temporal_weight, progress=progress):
            results.append(result)
            bar = None   # each frame gets its own bar (its own step count); Cancel works within and between
        return torch.cat(results)
    return optimize_stylize(encoder, frames, style, options, progress=progress)


NODES = [OptimizeStylize]
