"""LoadVGGEncoder and StyleFeatures nodes: thin wrappers over core.vgg / core.features."""
from __future__ import annotations

from ..core.device import FIXED_PRECISIONS
from ..core.features import StyleFeaturesOptions, blend_style_features, compute_style_features
from ..core.hub import registry_names
from ..core.images import comfy_to_bchw
from ..core.vgg import load_vgg_encoder
from . import comfy_env
from .options import option_inputs


class LoadVGGEncoder:
    @classmethod
    def INPUT_TYPES(cls):
        choices = registry_names("vgg") + comfy_env.list_local("vgg")
        return {"required": {
            "weights": (choices, {"default": "vgg19", "tooltip": "Registry entry (downloaded from the Hugging "
                                  "Face Hub into models/style_transfer/hub on first use) or a .safetensors "
                                  "file in models/vgg."}),
            "dtype": (list(FIXED_PRECISIONS), {"default": "fp32", "tooltip": "Precision of the encoder. fp16/bf16 "
                                               "halve memory on GPUs; keep fp32 on CPU."}),
        }}

    RETURN_TYPES = ("VGG_ENCODER",)
    RETURN_NAMES = ("encoder",)
    OUTPUT_TOOLTIPS = ("A frozen VGG feature encoder, used to measure content and style.",)
    FUNCTION = "load"
    CATEGORY = comfy_env.CATEGORY
    DESCRIPTION = "Loads a frozen VGG16/VGG19 feature encoder (safetensors only) on ComfyUI's device."

    @comfy_env.reports_user_errors
    def load(self, weights, dtype):
        return (load_vgg_encoder(weights, dtype=dtype, device=comfy_env.torch_device(),
                                 cache_dir=comfy_env.hub_cache_dir(),
                                 search_dirs=comfy_env.model_dirs("vgg")),)


class StyleFeaturesNode:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "encoder": ("VGG_ENCODER", {"tooltip": "From Load VGG Encoder (ganstyle)."}),
            "style_images": ("IMAGE", {"tooltip": "One or more style images (a batch). Several images are "
                                                  "blended into one style."}),
            **option_inputs(StyleFeaturesOptions, ("style_size",), {"style_size": {"step": 32}}),
        }, "optional": {
            "blend_weights": ("STRING", {"default": "", "tooltip": "Comma-separated weight per style image, e.g. "
                                                                   "'0.7, 0.3'. Empty = equal weights."}),
        }}

    RETURN_TYPES = ("STYLE_FEATURES",)
    RETURN_NAMES = ("style",)
    OUTPUT_TOOLTIPS = ("Gram matrices and channel statistics of the (blended) style.",)
    FUNCTION = "compute"
    CATEGORY = comfy_env.CATEGORY
    DESCRIPTION = "Computes the style statistics (Gram matrices, mean/std) of style images; several images are blended."

    @comfy_env.reports_user_errors
    def compute(self, encoder, style_images, style_size, blend_weights=""):
        options = StyleFeaturesOptions(style_size=style_size).checked()
        weights = parse_weights(blend_weights)
        return (compute_style_features(encoder, comfy_to_bchw(style_images), weights,
                                       style_size=options.style_size),)


class BlendStyleFeatures:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "style_a": ("STYLE_FEATURES", {"tooltip": "First style, from Style Features (ganstyle)."}),
            "style_b": ("STYLE_FEATURES", {"tooltip": "Second style; must come from the same encoder."}),
            "weight_a": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.05,
                                   "tooltip": "Share of style A in the mix (style B gets 1 - weight_a)."}),
        }}

    RETURN_TYPES = ("STYLE_FEATURES",)
    RETURN_NAMES = ("style",)
    OUTPUT_TOOLTIPS = ("The blended style.",)
    FUNCTION = "blend"
    CATEGORY = comfy_env.CATEGORY
    DESCRIPTION = "Mixes two styles (each measured at its own size) into one, by weight."

    @comfy_env.reports_user_errors
    def blend(self, style_a, style_b, weight_a):
        return (blend_style_features([style_a, style_b], [weight_a, 1.0 - weight_a]),)


def parse_weights(text: str) -> list[float] | None:
    from ..core.errors import InputError
    text = (text or "").strip()
    if not text:
        return None
    try:
        return [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
    except ValueError:
        raise InputError(f"blend_weights must be numbers separated by commas, got '{text}'") from None


NODE_CLASS_MAPPINGS = {"LoadVGGEncoder": LoadVGGEncoder, "StyleFeatures": StyleFeaturesNode,
                       "BlendStyleFeatures": BlendStyleFeatures}
NODE_DISPLAY_NAME_MAPPINGS = {"LoadVGGEncoder": "Load VGG Encoder (ganstyle)",
                              "StyleFeatures": "Style Features (ganstyle)",
                              "BlendStyleFeatures": "Blend Style Features (ganstyle)"}
