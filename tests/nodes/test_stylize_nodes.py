"""LoadStyleModel and GANStylize called the way ComfyUI calls them: IMAGE (B, H, W, C) in [0, 1],
inside inference mode, with ComfyUI's folder_paths / model_management / ProgressBar stand-ins
(the ``comfy`` fixture, conftest.py)."""
import re

import pytest
import torch
from workflow_runner import declared_inputs

from ganstyle.core.generator import StyleGenerator
from ganstyle.core.model_copies import release_device_copies
from ganstyle.core.stylize import stylize
from ganstyle.nodes import DISPLAY_NAMES, NODE_CLASSES
from ganstyle.nodes.stylize import NO_MODELS, GANStylize, LoadStyleModel

from helpers import comfy_call, fill_hub_cache, tiny_generator

pytestmark = pytest.mark.usefixtures("one_thread", "auto_is_fp32")



@pytest.fixture
def saved_model(comfy):
    return tiny_generator().save_pretrained(comfy.style_dir / "ink")


def test_pack_exports_nodes():
    for name in ("LoadStyleModel", "GANStylize"):
        assert name in NODE_CLASSES and name in DISPLAY_NAMES
    assert DISPLAY_NAMES["LoadStyleModel"] == "Load GAN Style Model (ganstyle)"
    assert DISPLAY_NAMES["GANStylize"] == "GAN Stylize (ganstyle)"
    for inp, (_, settings) in declared_inputs(GANStylize).items():
        assert settings.get("tooltip"), f"GANStylize.{inp} has no tooltip"


def test_load_and_stylize_like_comfyui(comfy, saved_model):
    choices = declared_inputs(LoadStyleModel)["model"][0]
    assert "ink" in choices
    (model,) = comfy_call(LoadStyleModel, model="ink", hub_repo="")
    assert model.device.type == "cpu" and model.name == "ink"
    images = torch.rand(2, 40, 56, 3)  # ComfyUI IMAGE: B, H, W, C
    (out,) = comfy_call(GANStylize, style_model=model, images=images, strength=1.0, preserve_color="none",
                        tile_size=0, precision="auto")
    assert out.shape == (2, 40, 56, 3) and out.dtype == torch.float32 and out.device.type == "cpu"
    expected = stylize(StyleGenerator.from_pretrained(saved_model), images.permute(0, 3, 1, 2))
    torch.testing.assert_close(out, expected.permute(0, 2, 3, 1), atol=1e-5, rtol=0)
    assert comfy.updates and comfy.updates[-1] == (1, 1)
    (same,) = comfy_call(GANStylize, style_model=model, images=images, strength=0.0, preserve_color="luminance")
    torch.testing.assert_close(same, images)
    # precision other than the model's: a converted copy is used, then dropped (offload semantics)
    (half,) = comfy_call(GANStylize, style_model=model, images=images, strength=1.0, preserve_color="none",
                         precision="bf16")
    torch.testing.assert_close(half, out, atol=3e-2, rtol=0)
    assert release_device_copies(model) == 0 and model.dtype == torch.float32


def test_tiled_node_progress_and_cancel(comfy, saved_model):
    (model,) = comfy_call(LoadStyleModel, model="ink")
    images = torch.rand(1, 150, 150, 3)
    (whole,) = comfy_call(GANStylize, style_model=model, images=images, strength=1.0, preserve_color="none")
    comfy.updates.clear()
    (tiled,) = comfy_call(GANStylize, style_model=model, images=images, strength=1.0, preserve_color="none",
                          tile_size=64, precision="fp32")
    torch.testing.assert_close(tiled, whole, atol=2e-5, rtol=0)
    assert len(comfy.updates) > 3 and comfy.updates[-1][0] == comfy.updates[-1][1]
    comfy.checks, comfy.interrupt_after = 0, 2
    with pytest.raises(InterruptedError):
        comfy_call(GANStylize, style_model=model, images=images, strength=1.0, preserve_color="none", tile_size=64)


def test_image_over_the_memory_budget(comfy, saved_model, monkeypatch):
    """An image too large for one pass: exact statistics (the default) give the untiled result,
    the thumbnail option a different one."""
    import ganstyle.core.engine as engine

    (model,) = comfy_call(LoadStyleModel, model="ink")
    images = torch.rand(1, 150, 150, 3, generator=torch.Generator().manual_seed(3))
    (whole,) = comfy_call(GANStylize, style_model=model, images=images, strength=1.0, preserve_color="none",
                          precision="fp32")
    bpp = model.generator.activation_bytes_per_pixel(torch.float32)
    monkeypatch.setattr(engine, "memory_budget", lambda device: bpp * 80 * 80)   # < 150²
    (exact,) = comfy_call(GANStylize, style_model=model, images=images, strength=1.0, preserve_color="none",
                          precision="fp32")
    (thumb,) = comfy_call(GANStylize, style_model=model, images=images, strength=1.0, preserve_color="none",
                          precision="fp32", large_image_statistics="thumbnail")
    torch.testing.assert_close(exact, whole, atol=2e-5, rtol=0)
    assert (thumb - whole).abs().max() > 1e-3


def test_load_from_hub_repo(comfy, saved_model, tmp_path):
    cache = tmp_path / "ComfyUI" / "models" / "style_transfer" / "hub"  # comfy_env.hub_cache_dir()
    fill_hub_cache(cache, "someone/ink", {"model.safetensors": saved_model / "model.safetensors",
                                          "config.json": saved_model / "config.json"}, revision="v2")
    (model,) = comfy_call(LoadStyleModel, model="ink", hub_repo=" someone/ink@v2 ")
    assert model.source == "hub:someone/ink@v2"
    with pytest.raises(ValueError, match=r"^\[ganstyle\] cannot get 'model.safetensors' from Hub repo 'someone/other'"):
        comfy_call(LoadStyleModel, model="ink", hub_repo="someone/other")


def test_errors_are_friendly(comfy, saved_model):
    assert declared_inputs(LoadStyleModel)["model"][0]
    with pytest.raises(ValueError, match=r"^\[ganstyle\] no style model selected"):
        comfy_call(LoadStyleModel, model=NO_MODELS)
    (model,) = comfy_call(LoadStyleModel, model="ink")
    with pytest.raises(ValueError, match=r"^\[ganstyle\] IMAGE contains NaN"):
        comfy_call(GANStylize, style_model=model, images=torch.full((1, 8, 8, 3), float("nan")), strength=1.0,
                   preserve_color="none")


def test_choices_default_and_placeholder(comfy, monkeypatch):
    import ganstyle.nodes.stylize as node_module

    monkeypatch.setattr(node_module, "registry_names", lambda kind: [])
    assert declared_inputs(LoadStyleModel)["model"][0] == [NO_MODELS]
    monkeypatch.setattr(node_module, "registry_names", lambda kind: ["a", "b"] if kind == "style" else ["vgg19"])
    monkeypatch.setattr(node_module, "default_style_model", lambda: "b")
    choices, opts = declared_inputs(LoadStyleModel)["model"]
    assert choices == ["a", "b"] and opts["default"] == "b"


def test_core_style_model_gets_a_clear_message(comfy, saved_model):
    """A saved workflow linking ComfyUI's own Load Style Model (type STYLE_MODEL) to GAN Stylize:
    refused before the run (ComfyUI calls validate_inputs with the linked types) and, should it
    get that far, when run; both name the node to use instead."""
    wanted = r"^\[ganstyle\] style_model must come from 'Load GAN Style Model \(ganstyle\)'; this workflow " \
             r"links ComfyUI's Load Style Model \(core node StyleModelLoader"
    assert declared_inputs(GANStylize)["style_model"][0] == "GANSTYLE_MODEL"
    assert tuple(LoadStyleModel.RETURN_TYPES) == ("GANSTYLE_MODEL",)
    validate = GANStylize.validate_inputs
    assert validate({"style_model": "GANSTYLE_MODEL", "images": "IMAGE"}) is True
    assert validate({"style_model": "GANSTYLE_MODEL", "images": "*", "tile_size": "INT"}) is True
    assert validate({"style_model": "GANSTYLE_MODEL", "images": "IMAGE", "precision": "COMBO"}) is True
    assert re.match(wanted, validate({"style_model": "STYLE_MODEL", "images": "IMAGE"}))
    assert "got VAE" in validate({"style_model": "VAE", "images": "IMAGE"})
    assert validate({"style_model": "GANSTYLE_MODEL", "images": "LATENT"}) == \
        "[ganstyle] images must be IMAGE, got LATENT"

    CoreStyleModel = type("StyleModel", (), {"__module__": "comfy.sd"})  # ComfyUI's comfy.sd.StyleModel
    with pytest.raises(ValueError, match=wanted):
        comfy_call(GANStylize, style_model=CoreStyleModel(), images=torch.rand(1, 8, 8, 3), strength=1.0,
                   preserve_color="none")
    (model,) = comfy_call(LoadStyleModel, model="ink")   # ours still works
    (out,) = comfy_call(GANStylize, style_model=model, images=torch.rand(1, 8, 8, 3), strength=1.0,
                        preserve_color="none")
    assert out.shape == (1, 8, 8, 3)
