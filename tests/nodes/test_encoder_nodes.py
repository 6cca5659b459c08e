"""Nodes called the way ComfyUI calls them: IMAGE is (B, H, W, C) in [0, 1], inside inference mode."""
import pytest
import torch
from workflow_runner import declared_inputs

from ganstyle.nodes import DISPLAY_NAMES, NODE_CLASSES
from ganstyle.nodes.encoder import LoadVGGEncoder, StyleFeaturesNode

from helpers import comfy_call


def test_pack_exports_mappings():
    for name in ("LoadVGGEncoder", "StyleFeatures"):
        assert name in NODE_CLASSES and name in DISPLAY_NAMES


def test_every_node_has_a_description_and_every_input_and_output_a_tooltip():
    for name, cls in NODE_CLASSES.items():
        schema = cls.define_schema()
        assert schema.node_id == name and schema.display_name == DISPLAY_NAMES[name]
        assert len(schema.description) > 40, f"{name} has no description"
        for inp in schema.inputs:
            assert inp.tooltip, f"{name}.{inp.id} has no tooltip"
        assert schema.outputs and all(out.tooltip for out in schema.outputs), f"{name}: an output has no tooltip"
        assert schema.category.startswith("style_transfer")
        for inp, (_, settings) in declared_inputs(cls).items():   # ComfyUI's V1 view of the same
            assert settings.get("tooltip"), f"{name}.{inp} has no tooltip in INPUT_TYPES"


def test_load_encoder_from_models_folder(vgg16_file, monkeypatch):
    monkeypatch.setenv("GANSTYLE_MODELS_DIR", str(vgg16_file.parent.parent))
    (vgg16_file.parent.parent / "vgg").mkdir(exist_ok=True)
    target = vgg16_file.parent.parent / "vgg" / "mine.safetensors"
    target.write_bytes(vgg16_file.read_bytes())
    assert "mine.safetensors" in declared_inputs(LoadVGGEncoder)["weights"][0]
    (enc,) = comfy_call(LoadVGGEncoder, weights="mine.safetensors", dtype="fp32")
    assert enc.arch == "vgg16" and enc.device.type == "cpu"


def test_load_encoder_offline_error_is_friendly(monkeypatch, tmp_path):
    monkeypatch.setenv("GANSTYLE_MODELS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=r"^\[ganstyle\] cannot get 'model\.safetensors' from Hub repo "
                                         r"'timm/vgg19\.tv_in1k'"):
        comfy_call(LoadVGGEncoder, weights="vgg19", dtype="fp32")


def test_style_features_node_blends(vgg16, painting, photo):
    bhwc = torch.cat([painting[:, :, :48, :48], photo[:, :, :48, :48]]).permute(0, 2, 3, 1)
    (feats,) = comfy_call(StyleFeaturesNode, encoder=vgg16, style_images=bhwc, style_size=64,
                          blend_weights="3, 1")
    assert feats.blend_weights == (0.75, 0.25) and feats.grams["relu3_1"].shape == (256, 256)
    with pytest.raises(ValueError, match=r"^\[ganstyle\] blend_weights must be numbers"):
        comfy_call(StyleFeaturesNode, encoder=vgg16, style_images=bhwc, style_size=64, blend_weights="a,b")
    with pytest.raises(ValueError, match=r"2 blend weights for 1 style images"):
        comfy_call(StyleFeaturesNode, encoder=vgg16, style_images=bhwc[:1], style_size=64, blend_weights="1,2")


def test_blend_style_features_node(vgg16, painting, photo):
    from ganstyle.nodes.encoder import BlendStyleFeatures
    (a,) = comfy_call(StyleFeaturesNode, encoder=vgg16, style_images=painting.permute(0, 2, 3, 1), style_size=64)
    (b,) = comfy_call(StyleFeaturesNode, encoder=vgg16, style_images=photo.permute(0, 2, 3, 1), style_size=64)
    (mix,) = comfy_call(BlendStyleFeatures, style_a=a, style_b=b, weight_a=0.75)
    assert mix.blend_weights == (0.75, 0.25)
    torch.testing.assert_close(mix.grams["relu2_1"], 0.75 * a.grams["relu2_1"] + 0.25 * b.grams["relu2_1"])
    with pytest.raises(ValueError, match=r"^\[ganstyle\] blend weights must be non-negative"):
        comfy_call(BlendStyleFeatures, style_a=a, style_b=b, weight_a=0.0 - 0.5)
