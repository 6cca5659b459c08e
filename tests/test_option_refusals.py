"""Every entry point refuses the same bad option the same way: the core's words (each options
dataclass's ``checked()``, one check of a value against its declared bounds), with the entry
point's own name for the input (the core: the field name; the CLI: the flag; a node: the input),
and nothing is written.

Entry points: core ``stylize`` and ``VideoStylizer``; ``ganstyle stylize`` on an image and on a
frame folder with ``--video``; the GAN Stylize node (a single image and a clip); Train Style,
whose steps and image_size are TrainConfig's fields (bounds and wording)."""
from __future__ import annotations

import pytest
import torch

from ganstyle.core import models as style_models
from ganstyle.core.config import OptionError
from ganstyle.core.errors import ConfigError
from ganstyle.core.images import save_image
from ganstyle.core.stylize import StylizeOptions, stylize
from ganstyle.core.video import VideoOptions, VideoStylizer
from ganstyle.nodes import comfy_env
from ganstyle.nodes.stylize import GANStylize, LoadStyleModel
from ganstyle.nodes.train import TrainStyle
from ganstyle.train_cli.__main__ import main

from helpers import comfy_call, synthetic_painting, synthetic_photo, tiny_library

pytestmark = pytest.mark.usefixtures("one_thread", "auto_is_fp32")

# The bad value of each case, and the core's words for its refusal ("{}": the option's name).
BAD = {"strength": 1.5, "temporal": 0.99, "style": "nope"}
REFUSAL = {
    "strength": "{} is 1.5, must be at most 1.0",
    "temporal": "{} is 0.99, must be at most 0.98",
    "style": "{} is 'nope': unknown style(s) ['nope']; this library has ['ink', 'oil', 'chalk']",
}
FLAG = {"strength": "--strength", "temporal": "--temporal", "style": "--style"}


def core_case(case: str) -> dict:
    """stylize()/VideoStylizer keyword arguments: a valid style, and the bad value of ``case``."""
    return {"style": "ink", case: BAD[case]}


# -- the core ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["strength", "style"])
def test_stylize(case):
    photo = synthetic_photo(16, 16)
    with pytest.raises(OptionError) as refused:
        stylize(tiny_library(), photo, **core_case(case))
    assert str(refused.value) == REFUSAL[case].format(case)
    if case == "strength":   # the options object goes through the same check
        with pytest.raises(OptionError, match="^strength is 1.5, must be at most 1.0$"):
            stylize(tiny_library(), photo, StylizeOptions(strength=1.5), style="ink")


@pytest.mark.parametrize("case", ["strength", "temporal", "style"])
def test_video_stylizer(case):
    """VideoStylizer blended past strength 1 and took any temporal; now it checks what stylize() does."""
    video = VideoOptions(temporal=BAD["temporal"]) if case == "temporal" else VideoOptions()
    stylizing = StylizeOptions(strength=BAD["strength"]) if case == "strength" else StylizeOptions()
    with pytest.raises(OptionError) as refused:
        VideoStylizer(tiny_library(), video, stylizing, style=BAD["style"] if case == "style" else "ink")
    assert str(refused.value) == REFUSAL[case].format(case)


# -- ganstyle stylize ------------------------------------------------------------------------------

@pytest.fixture
def library_dir(tmp_path):
    return tiny_library().save_pretrained(tmp_path / "library")


def cli_refusal(args: list[str], capsys) -> str:
    """The error line (an option's refusal comes before the model is loaded; a style name's after)."""
    assert main(args) == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("case", ["strength", "temporal", "style"])
def test_cli_on_an_image(case, library_dir, tmp_path, capsys):
    photo = tmp_path / "photo.png"
    save_image(synthetic_photo(16, 16), photo)
    out = tmp_path / "out"
    style = BAD["style"] if case == "style" else "ink"
    extra = [] if case == "style" else [FLAG[case], str(BAD[case])]
    message = cli_refusal(["stylize", str(photo), "-o", str(out), "--model", str(library_dir), "--device", "cpu",
                           "--style", style, *extra], capsys)
    assert message == "ganstyle stylize: error: " + REFUSAL[case].format(FLAG[case])
    assert not out.exists()


@pytest.mark.parametrize("case", ["strength", "temporal", "style"])
def test_cli_on_frames(case, library_dir, tmp_path, capsys):
    """``ganstyle stylize FRAMES --video --temporal 0.5 --strength 1.5`` and ``--temporal 0.99`` ran and wrote
    frames; now they are refused as an image is, and the output folder stays empty."""
    frames = tmp_path / "frames"
    for i in range(2):
        save_image(synthetic_photo(16, 16, seed=i), frames / f"{i:03d}.png")
    out = tmp_path / "out"
    out.mkdir()
    style = BAD["style"] if case == "style" else "ink"
    extra = ["--temporal", "0.5"] if case != "temporal" else []
    extra += [] if case == "style" else [FLAG[case], str(BAD[case])]
    message = cli_refusal(["stylize", str(frames), "--video", "-o", str(out), "--model", str(library_dir),
                           "--device", "cpu", "--style", style, *extra], capsys)
    assert message == "ganstyle stylize: error: " + REFUSAL[case].format(FLAG[case])
    assert not any(out.iterdir())


# -- the nodes -------------------------------------------------------------------------------------

@pytest.fixture
def style_dir(tmp_path, monkeypatch):
    """models/style_transfer as ComfyUI gives it, holding the library; nodes run on the CPU."""
    folder = tmp_path / "style_transfer"
    tiny_library().save_pretrained(folder / "library")
    monkeypatch.setattr(comfy_env, "model_dirs", lambda kind: [folder] if kind == "style" else [])
    monkeypatch.setattr(comfy_env, "hub_cache_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(comfy_env, "torch_device", lambda: torch.device("cpu"))
    style_models.clear_cache()
    yield folder
    style_models.clear_cache()


def node_refusal(node_cls, **inputs) -> str:
    with pytest.raises(ValueError) as refused:
        comfy_call(node_cls, **inputs)
    assert type(refused.value) is ValueError     # comfy_env.reports_user_errors: a one-line message
    return str(refused.value)


@pytest.mark.parametrize("frames", [1, 2], ids=["image", "clip"])
@pytest.mark.parametrize("case", ["strength", "temporal", "style"])
def test_gan_stylize(case, frames, style_dir):
    (model,) = comfy_call(LoadStyleModel, model="library", hub_repo="")
    images = torch.cat([synthetic_photo(16, 16, seed=i) for i in range(frames)]).permute(0, 2, 3, 1)
    inputs = {"strength": 1.0, "preserve_color": "none", "style": "ink", "temporal": 0.5, case: BAD[case]}
    message = node_refusal(GANStylize, style_model=model, images=images, **inputs)
    assert message == "[ganstyle] " + REFUSAL[case].format(case)


def test_gan_stylize_says_its_input_names(style_dir):
    """Inputs named otherwise than their option (saved workflows know them so) are named as the node's."""
    (model,) = comfy_call(LoadStyleModel, model="library", hub_repo="")
    images = synthetic_photo(16, 16).permute(0, 2, 3, 1)
    message = node_refusal(GANStylize, style_model=model, images=images, strength=1.0, preserve_color="sepia",
                           style="ink")
    assert message == "[ganstyle] preserve_color is 'sepia', expected one of ['none', 'luminance', 'histogram']"
    for mask, text in (("mask", "mask_style"), ("mask_2", "mask_style_2")):
        message = node_refusal(GANStylize, style_model=model, images=images, strength=1.0, preserve_color="none",
                               style="ink", **{mask: torch.ones(1, 16, 16), text: "nope"})
        assert message == "[ganstyle] " + REFUSAL["style"].format(text)
    message = node_refusal(GANStylize, style_model=model, images=images, strength=1.0, preserve_color="none",
                           style="ink", large_image_statistics="approximate")
    assert message == "[ganstyle] large_image_statistics is 'approximate', expected one of ['exact', 'thumbnail']"


@pytest.mark.parametrize("inputs,message", [
    ({"steps": 0}, "training options: field 'steps' is 0, must be at least 1"),
    ({"steps": 20_000_000}, "training options: field 'steps' is 20000000, must be at most 10000000"),
    ({"image_size": 8}, "training options: field 'image_size' is 8, must be at least 16"),
])
def test_train_style(inputs, message, style_dir, vgg16):
    """Train Style's steps and image_size are TrainConfig's: its bounds (the node's widgets) and its words,
    and the refusal comes before the node writes its inputs into the run folder."""
    from ganstyle.core.training.config import TrainConfig, validated

    for name in ("steps", "image_size"):
        field = TrainConfig.__dataclass_fields__[name]
        widget = TrainStyle.INPUT_TYPES()["required" if name == "steps" else "optional"][name][1]
        assert (widget["min"], widget["max"]) == (field.metadata["lo"], field.metadata["hi"])
    with pytest.raises(ConfigError) as refused:     # what `ganstyle train` and the trainer say
        validated(TrainConfig(content=("photos",), style=("painting.png",), out="run", **inputs))
    assert str(refused.value) == message
    before = sorted(style_dir.rglob("*"))
    photos = torch.cat([synthetic_photo(32, 32, seed=i) for i in range(2)]).permute(0, 2, 3, 1)
    refusal = node_refusal(TrainStyle, encoder=vgg16, style_images=synthetic_painting(32, 32).permute(0, 2, 3, 1),
                           name="mine", content_images=photos, **{"steps": 2, **inputs})
    assert refusal == "[ganstyle] " + message
    assert sorted(style_dir.rglob("*")) == before
