"""Nodes called the way ComfyUI calls them: IMAGE is (B, H, W, C) in [0, 1], inside inference mode."""
import pytest
import torch

import ganstyle
from ganstyle.nodes.encoder import LoadVGGEncoder, StyleFeaturesNode

from helpers import comfy_call


def test_pack_exports_mappings():
    for name in ("LoadVGGEncoder", "StyleFeatures"):
        assert name in ganstyle.NODE_CLASS_MAPPINGS and name in ganstyle.NODE_DISPLAY_NAME_MAPPINGS


def test_every_input_has_tooltip_and_category():
    for name, cls in ganstyle.NODE_CLASS_MAPPINGS.items():
        spec = cls.INPUT_TYPES()
        for section in spec.values():
            for inp, (_, *opts) in section.items():
                assert opts and "tooltip" in opts[0], f"{name}.{inp} has no tooltip"
        assert cls.CATEGORY.startswith("style_transfer")
        assert len(cls.RETURN_TYPES) >= 1 and hasattr(cls, cls.FUNCTION)


def test_load_encoder_from_models_folder(vgg16_file, monkeypatch):
    monkeypatch.setenv("GANSTYLE_MODELS_DIR", str(vgg16_file.parent.parent))
    (vgg16_file.parent.parent / "vgg").mkdir(exist_ok=True)
    target = vgg16_file.parent.parent / "vgg" / "mine.safetensors"
    target.write_bytes(vgg16_file.read_bytes())
    assert "mine.safetensors" in LoadVGGEncoder.INPUT_TYPES()["required"]["weights"][0]
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
