"""LoadVGGEncoder and StyleFeatures nodes: thin wrappers over core.vgg / core.features."""
from __future__ import annotations

from ..core.device import FIXED_PRECISIONS
from ..core.features import StyleFeaturesOptions, blend_style_features, compute_style_features
from ..core.hub import registry_names
from ..core.images import comfy_to_bchw
from ..core.vgg import load_vgg_encoder
from . import comfy_env
from .comfy_env import io
from .options import option_inputs

# The pack's link types (ComfyUI's core has neither).
VGGEncoder = io.Custom("VGG_ENCODER")
StyleFeaturesType = io.Custom("STYLE_FEATURES")


class LoadVGGEncoder(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        choices = registry_names("vgg") + comfy_env.list_local("vgg")
        return io.Schema(
            node_id="LoadVGGEncoder", display_name="Load VGG Encoder (ganstyle)", category=comfy_env.CATEGORY,
            description="Loads a frozen VGG16/VGG19 feature encoder (safetensors only) on ComfyUI's device.",
            inputs=[
                io.Combo.Input("weights", options=choices, default="vgg19",
                               tooltip="Registry entry (downloaded from the Hugging Face Hub into "
                                       "models/style_transfer/hub on first use) or a .safetensors file in models/vgg."),
                io.Combo.Input("dtype", options=list(FIXED_PRECISIONS), default="fp32",
                               tooltip="Precision of the encoder. fp16/bf16 halve memory on GPUs; keep fp32 on CPU."),
            ],
            outputs=[VGGEncoder.Output(
                "encoder", display_name="encoder",
                tooltip="A frozen VGG feature encoder, used to measure content and style.")])

    @classmethod
    @comfy_env.reports_user_errors
    def execute(cls, weights, dtype):
        return io.NodeOutput(load_vgg_encoder(weights, dtype=dtype, device=comfy_env.torch_device(),
                                              cache_dir=comfy_env.hub_cache_dir(),
                                              search_dirs=comfy_env.model_dirs("vgg")))


class StyleFeaturesNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleFeatures", display_name="Style Features (ganstyle)", category=comfy_env.CATEGORY,
            description="Computes the style statistics (Gram matrices, mean/std) of style images; several images "
                        "are blended.",
            inputs=[
                VGGEncoder.Input("encoder", tooltip="From Load VGG Encoder (ganstyle)."),
                io.Image.Input("style_images", tooltip="One or more style images (a batch). Several images are "
                                                       "blended into one style."),
                *option_inputs(StyleFeaturesOptions, ("style_size",), {"style_size": {"step": 32}}),
                io.String.Input("blend_weights", optional=True, default="",
                                tooltip="Comma-separated weight per style image, e.g. '0.7, 0.3'. Empty = equal "
                                        "weights."),
            ],
            outputs=[StyleFeaturesType.Output(
                "style", display_name="style",
                tooltip="Gram matrices and channel statistics of the (blended) style.")])

    @classmethod
    @comfy_env.reports_user_errors
    def execute(cls, encoder, style_images, style_size, blend_weights=""):
        options = StyleFeaturesOptions(style_size=style_size).checked()
        weights = parse_weights(blend_weights)
        return io.NodeOutput(compute_style_features(encoder, comfy_to_bchw(style_images), weights,
                                                    style_size=options.style_size))


class BlendStyleFeatures(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="BlendStyleFeatures", display_name="Blend Style Features (ganstyle)",
            category=comfy_env.CATEGORY,
            description="Mixes two styles (each measured at its own size) into one, by weight.",
            inputs=[
                StyleFeaturesType.Input("style_a", tooltip="First style, from Style Features (ganstyle)."),
                StyleFeaturesType.Input("style_b", tooltip="Second style; must come from the same encoder."),
                io.Float.Input("weight_a", default=0.5, min=0.0, max=1.0, step=0.05,
                               tooltip="Share of style A in the mix (style B gets 1 - weight_a)."),
            ],
            outputs=[StyleFeaturesType.Output(
                "style", display_name="style",
                tooltip="The blended style.")])

    @classmethod
    @comfy_env.reports_user_errors
    def execute(cls, style_a, style_b, weight_a):
        return io.NodeOutput(blend_style_features([style_a, style_b], [weight_a, 1.0 - weight_a]))


def parse_weights(text: str) -> list[float] | None:
    from ..core.errors import InputError
    text = (text or "").strip()
    if not text:
        return None
    try:
        return [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
    except ValueError:
        raise InputError(f"blend_weights must be numbers separated by commas, got '{text}'") from None


NODES = [LoadVGGEncoder, StyleFeaturesNode, BlendStyleFeatures]
