"""LoadStyleModel and GANStylize nodes: thin wrappers over core.models / core.stylize."""
from __future__ import annotations

import torch

from ..core.decoder import EncoderDecoder
from ..core.errors import GanstyleError
from ..core.features import StyleFeatures
from ..core.generator import StyleGenerator
from ..core.hub import registry_names
from ..core.images import bchw_to_comfy, comfy_to_bchw
from ..core.model_copies import release_device_copies
from ..core.models import (
    StyleModel,
    default_style_model,
    load_style_model,
    local_style_models,
    model_kind,
    takes_style_features,
    with_added_styles,
)
from ..core.stylize import StylizeOptions, stylize
from ..core.video import VideoOptions, VideoStylizer
from . import comfy_env
from .comfy_env import io
from .encoder import StyleFeaturesType
from .options import input_names, inputs_named, option_inputs, options_from_inputs

# Widget order is part of saved UI workflows: append new inputs at the end of STYLIZE_OPTIONAL.
STYLIZE_REQUIRED = ("strength", ("preserve_color", "color_mode"))
STYLIZE_OPTIONAL = ("tile_size", "precision", ("large_image_statistics", "tile_statistics"))
STYLIZE_WIDGETS = {"strength": {"step": 0.05}, "tile_size": {"step": 64}}
NO_MODELS = "(no style models: put one in models/style_transfer or set hub_repo)"


def library_inputs() -> list:
    """For style libraries (several styles in one model); after the options, in this order."""
    return [
        io.String.Input("style", optional=True, default="",
                        tooltip="Style libraries only: the style to apply, a name (the model card lists them) or a "
                                "blend such as 'altar:0.7, coast:0.3'. With masks: the style of what no mask "
                                "covers. Empty = the library's first style."),
        io.Mask.Input("mask", optional=True, tooltip="Style libraries only: a region (white = 1; soft edges blend, "
                                                     "any size) that gets mask_style, in the same single pass."),
        io.String.Input("mask_style", optional=True, default="", tooltip="The style (or blend) for mask."),
        io.Mask.Input("mask_2", optional=True, tooltip="A second region, for mask_style_2."),
        io.String.Input("mask_style_2", optional=True, default="", tooltip="The style (or blend) for mask_2."),
    ]


# For video (a batch of frames in order), after library_inputs(): VideoOptions' fields. The
# widget keeps the default saved workflows have (0: not a clip), and says what 0 means here.
VIDEO_NAMES = ("temporal",)
VIDEO_WIDGETS = {"temporal": {"default": 0.0, "step": 0.05,
                              "tooltip": "0 = every image on its own. Above 0 the batch is a video clip (frames in "
                                         "order): the clip shares its normalisation statistics (tone and colour do "
                                         "not pump) and this much of the previous stylised frame, moved along the "
                                         "optical flow, is kept where the scene is visible in both: no flicker. 0.5 "
                                         "is a good start."}}
ARBITRARY_OPTIONS = ("palette",)


def arbitrary_inputs() -> list:
    """For arbitrary-style models (any style image in one pass); after the video inputs."""
    return [
        StyleFeaturesType.Input("style_features", optional=True,
                                tooltip="Arbitrary-style models (such as arbitrary-fast): the style to apply, from "
                                        "Style Features (any painting, one pass; Blend Style Features for mixes). "
                                        "With masks: the style of what no mask covers."),
        StyleFeaturesType.Input("mask_features", optional=True,
                                tooltip="Arbitrary-style models: the style for mask."),
        StyleFeaturesType.Input("mask_features_2", optional=True,
                                tooltip="Arbitrary-style models: the style for mask_2."),
        *option_inputs(StylizeOptions, ARBITRARY_OPTIONS, {"palette": {"step": 0.05}}, optional=True),
    ]


# The node's name for each option (the core's refusals name fields; a few inputs are named otherwise).
INPUT_NAMES = input_names(STYLIZE_REQUIRED, STYLIZE_OPTIONAL, VIDEO_NAMES, ARBITRARY_OPTIONS)
# Our own link type and names: ComfyUI's core has a "Load Style Model" (StyleModelLoader) whose
# output type is STYLE_MODEL (Flux Redux / T2I style adapters), a different kind of model.
MODEL_TYPE = "GANSTYLE_MODEL"
StyleModelType = io.Custom(MODEL_TYPE)
LOADER_NAME = "Load GAN Style Model (ganstyle)"
STYLIZE_NAME = "GAN Stylize (ganstyle)"


def not_our_model(what: str) -> str:
    """The message for a ``style_model`` input that did not come from our loader (``what``: the
    linked output's type, or the Python type of the object received)."""
    if what in ("STYLE_MODEL", "comfy.sd.StyleModel"):
        where = ("this workflow links ComfyUI's Load Style Model (core node StyleModelLoader, type STYLE_MODEL, "
                 "for Flux Redux / T2I style adapters) to it")
    else:
        where = f"it got {what}"
    return (f"style_model must come from '{LOADER_NAME}'; {where}. Replace that node with "
            f"'{LOADER_NAME}' (search 'ganstyle' in the node library).")


def _type_accepts(want, got) -> bool:
    """ComfyUI's link type rule, for the inputs we check ourselves (see GANStylize.validate_inputs)."""
    if not isinstance(want, str) or not isinstance(got, str) or want == "COMBO":
        return True   # combos: ComfyUI compares values, not types
    if "*" in (want, got):
        return True
    return bool(set(got.split(",")) & set(want.split(",")))


def style_model_choices() -> list[str]:
    choices = registry_names("style") + local_style_models(comfy_env.model_dirs("style"))
    return list(dict.fromkeys(choices)) or [NO_MODELS]


class LoadStyleModel(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        choices = style_model_choices()
        default = default_style_model()
        return io.Schema(
            node_id="LoadStyleModel", display_name=LOADER_NAME, category=comfy_env.CATEGORY,
            description="Loads a trained style model (model.safetensors + config.json; the config is validated and "
                        "nothing is executed) from the registry, models/style_transfer or the Hugging Face Hub.",
            inputs=[
                io.Combo.Input("model", options=choices, default=default if default in choices else choices[0],
                               tooltip="A style model: a registry entry (shipped, or downloaded from the Hugging "
                                       "Face Hub on first use) or a folder / .safetensors file (with its .json "
                                       "config) in models/style_transfer."),
                io.String.Input("hub_repo", optional=True, default="",
                                tooltip="Optional Hugging Face Hub repo 'org/name' or 'org/name@revision'. When set, "
                                        "it is loaded instead of 'model' and cached in models/style_transfer/hub."),
                io.String.Input("styles_from", optional=True, default="",
                                tooltip="Style libraries only: style files to add (folders written by 'ganstyle "
                                        "train --base' or Train Style, in models/style_transfer or full paths, or "
                                        "Hub repos 'org/name[@revision]'), separated by commas. Their names become "
                                        "choices of GAN Stylize's style."),
            ],
            outputs=[StyleModelType.Output(
                "style_model", display_name="style_model",
                tooltip="A trained feed-forward style model, kept on the offload device until "
                        "GAN Stylize runs it.")])

    @classmethod
    @comfy_env.reports_user_errors
    def execute(cls, model, hub_repo="", styles_from=""):
        ref = (hub_repo or "").strip() or model
        if ref == NO_MODELS:
            raise GanstyleError("no style model selected: put a model folder (model.safetensors + "
                                "config.json) in models/style_transfer, or set hub_repo")
        loaded = load_style_model(ref, device=comfy_env.offload_device(), dtype=torch.float32,
                                  cache_dir=comfy_env.hub_cache_dir(), search_dirs=comfy_env.model_dirs("style"))
        refs = [comfy_env.find_style_file(name.strip()) for name in (styles_from or "").split(",") if name.strip()]
        return io.NodeOutput(with_added_styles(loaded, refs, cache_dir=comfy_env.hub_cache_dir()))


class GANStylize(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GANStylize", display_name=STYLIZE_NAME, category=comfy_env.CATEGORY,
            description="Stylises images with a trained style model in one forward pass, at any resolution: large "
                        "images are processed in seamless tiles in bounded memory (halved automatically on "
                        "out-of-memory).",
            inputs=[
                StyleModelType.Input("style_model", tooltip=f"From {LOADER_NAME} (not ComfyUI's core Load Style "
                                                            f"Model)."),
                io.Image.Input("images", tooltip="Images to stylise (a batch; any size)."),
                *option_inputs(StylizeOptions, STYLIZE_REQUIRED, STYLIZE_WIDGETS),
                *option_inputs(StylizeOptions, STYLIZE_OPTIONAL, STYLIZE_WIDGETS, optional=True),
                *library_inputs(),
                *option_inputs(VideoOptions, VIDEO_NAMES, VIDEO_WIDGETS, optional=True),
                *arbitrary_inputs(),
            ],
            # (output id: ComfyUI 0.3.4x-0.3.6x want ids unique across inputs and outputs)
            outputs=[io.Image.Output(
                "stylized", display_name="images",
                tooltip="The stylised images, same size as the input.")])

    @classmethod
    def validate_inputs(cls, input_types):
        """Before the run: ComfyUI passes the type linked to each input and leaves the type check to
        us, so a workflow that links the core Load Style Model gets our message, not a bare
        'Return type mismatch'."""
        declared = {**cls.INPUT_TYPES()["required"], **cls.INPUT_TYPES().get("optional", {})}
        for name, got in (input_types or {}).items():
            want = declared[name][0] if name in declared else None
            if name == "style_model" and got != MODEL_TYPE and got != "*":
                return f"[ganstyle] {not_our_model(got)}"
            if want is not None and not _type_accepts(want, got):
                return f"[ganstyle] {name} must be {want}, got {got}"
        return True

    @classmethod
    @comfy_env.reports_user_errors
    @inputs_named(INPUT_NAMES)      # the core's refusals of an option, with this node's input names
    def execute(cls, style_model, images, style="", mask=None, mask_style="", mask_2=None, mask_style_2="",
                style_features=None, mask_features=None, mask_features_2=None, **inputs):
        if not isinstance(style_model, (StyleModel, StyleGenerator, EncoderDecoder)):
            kind = type(style_model)
            raise GanstyleError(not_our_model(f"{kind.__module__}.{kind.__qualname__}"))
        options = options_from_inputs(StylizeOptions, STYLIZE_REQUIRED + STYLIZE_OPTIONAL + ARBITRARY_OPTIONS,
                                      inputs, STYLIZE_WIDGETS)
        # checked here (not only in the clip path) so a single image refuses a bad temporal too
        video = options_from_inputs(VideoOptions, VIDEO_NAMES, inputs, VIDEO_WIDGETS).checked()
        pick = lambda features, text: text if features is None else features  # noqa: E731
        choice = style_choice(style_model, pick(style_features, style),
                              [(mask, pick(mask_features, mask_style), "mask"),
                               (mask_2, pick(mask_features_2, mask_style_2), "mask_2")])
        # the core numbers the styles of the masks it gets (mask_style_1, …): the connected ones
        connected = [name for m, name in ((mask, "mask_style"), (mask_2, "mask_style_2")) if m is not None]
        with inputs_named({f"mask_style_{i + 1}": name for i, name in enumerate(connected)}):
            return io.NodeOutput(bchw_to_comfy(run_stylize(style_model, images, options, video, choice)))


def run_stylize(style_model, images, options: StylizeOptions, video: VideoOptions, choice: dict):
    """Stylise a ComfyUI IMAGE batch (B, H, W, C), a clip when ``video`` says so; (B, 3, H, W) out."""
    x = comfy_to_bchw(images)
    bar = comfy_env.Progress(1)

    def progress(done: int, total: int) -> None:
        comfy_env.throw_if_interrupted()
        bar.total = max(1, total)
        bar.update(done)

    comfy_env.throw_if_interrupted()
    if video.temporal > 0 and x.shape[0] > 1:
        return stylize_clip(style_model, x, video, options, choice, progress)
    # ComfyUI runs nodes under inference_mode; core.stylize needs no autograd, so that is fine.
    # The model stays on the offload device; stylize() makes the device copy, dropped after
    # the run so nothing is left on the GPU (CUDA graphs only pay off when kept, so: off).
    try:
        out = stylize(style_model, x, options, **choice, device=comfy_env.torch_device(), progress=progress,
                      cuda_graphs=False)
    finally:
        release_device_copies(style_model)
    return out


def stylize_clip(style_model, frames, video: VideoOptions, options: StylizeOptions, choice: dict, progress):
    """A batch of frames as one clip (core.video): shared statistics and flow-guided blending."""
    if choice.get("masks"):
        raise GanstyleError("masks apply to single images; for a clip, leave mask unconnected")
    stylizer = VideoStylizer(style_model, video, options, style=choice.get("style"),
                             device=comfy_env.torch_device())
    out = torch.empty_like(frames)
    try:
        for i in range(frames.shape[0]):
            out[i] = stylizer(frames[i:i + 1])[0]
            progress(i + 1, frames.shape[0])
    finally:
        stylizer.close()
        release_device_copies(style_model)
    return out


def style_choice(style_model, style, masks: list) -> dict:
    """The node's style inputs → ``stylize(style=…, masks=…)``. A style is a name/blend string, or
    StyleFeatures (an arbitrary-style model). A library with no style given gets its first style;
    a single-style model ignores empty style inputs and refuses others."""
    generator = getattr(style_model, "generator", style_model)
    regions = []
    for mask, spec, name in masks:
        if mask is None:
            continue
        if isinstance(spec, StyleFeatures):
            regions.append((mask.float().cpu(), spec))
            continue
        if not (spec or "").strip():
            raise GanstyleError(f"{name} is connected but {name.replace('mask', 'mask_style')} is empty: name the "
                                f"style for that region" + (f" (or connect {name.replace('mask', 'mask_features')})"
                                                            if takes_style_features(style_model) else ""))
        regions.append((mask.float().cpu(), spec))
    if isinstance(style, StyleFeatures):
        return {"style": style, "masks": regions}
    style = (style or "").strip()
    kind = model_kind(style_model)
    if kind in ("arbitrary style", "encoder-decoder"):
        raise GanstyleError(f"this is an {'any-style encoder-decoder' if kind == 'encoder-decoder' else kind} model: "
                            f"connect Style Features (from Load VGG Encoder and a style image) to style_features")
    if kind == "single style" and not style and not regions:
        return {}
    if kind == "style library" and not style:
        style = generator.style_names[0]
    return {"style": style, "masks": regions}


# Node ids stay as they were (no core or known pack uses them): saved workflows keep loading.
NODES = [LoadStyleModel, GANStylize]
