"""Every node fed bad input raises a ComfyUI-friendly ValueError('[ganstyle] …') naming the
problem (not a stack of internals), and the next run with good input works."""
from __future__ import annotations

import pytest
import torch

from ganstyle.core import models as style_models
from ganstyle.nodes import comfy_env
from ganstyle.nodes.encoder import BlendStyleFeatures, LoadVGGEncoder, StyleFeaturesNode
from ganstyle.nodes.optimize import OptimizeStylize
from ganstyle.nodes.stylize import GANStylize, LoadStyleModel

from helpers import fill_hub_cache, synthetic_painting, synthetic_photo, tiny_generator, write_vgg

BAD_IMAGES = {
    "nan": torch.full((1, 16, 16, 3), float("nan")),
    "inf": torch.full((1, 16, 16, 3), float("inf")),
    "empty batch": torch.zeros(0, 16, 16, 3),
    "zero height": torch.zeros(1, 0, 16, 3),
    "2 channels": torch.zeros(1, 16, 16, 2),
    "not a tensor": [[0.5]],
}


def comfy(x_bchw):
    return x_bchw.permute(0, 2, 3, 1).contiguous()


def assert_friendly(excinfo, *needles):
    e = excinfo.value
    assert type(e) is ValueError, type(e)
    message = str(e)
    assert message.startswith("[ganstyle]"), message
    assert "Traceback" not in message
    for needle in needles:
        assert needle.lower() in message.lower(), message


@pytest.fixture
def model_dirs(tmp_path, monkeypatch):
    """A models/style_transfer and models/vgg folder as ComfyUI would give them."""
    style_dir, vgg_dir = tmp_path / "style_transfer", tmp_path / "vgg"
    style_dir.mkdir(), vgg_dir.mkdir()
    tiny_generator(seed=0).save_pretrained(style_dir / "good")
    broken = tiny_generator(seed=1).save_pretrained(style_dir / "broken")
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    monkeypatch.setattr(comfy_env, "model_dirs",
                        lambda kind: [str(style_dir)] if kind == "style" else [str(vgg_dir)])
    monkeypatch.setattr(comfy_env, "hub_cache_dir", lambda: str(tmp_path / "hub"))
    style_models.clear_cache()
    yield {"style": style_dir, "vgg": vgg_dir, "hub": tmp_path / "hub"}
    style_models.clear_cache()


def test_load_style_model_node_errors_then_works(model_dirs):
    node = LoadStyleModel
    with pytest.raises(ValueError) as e:
        node.execute("broken")
    assert_friendly(e, "model.safetensors", "truncated")
    with pytest.raises(ValueError) as e:
        node.execute("good", hub_repo="org/not-cached")
    assert_friendly(e, "org/not-cached", "by hand")
    fill_hub_cache(model_dirs["hub"], "org/half", {"model.safetensors": b"\x10\0\0\0\0\0\0\0{}",
                                                   "config.json": model_dirs["style"] / "good" / "config.json"})
    with pytest.raises(ValueError) as e:
        node.execute("good", hub_repo="org/half")
    assert_friendly(e, "model.safetensors")
    (model_dirs["style"] / "good" / "config.json").write_text('{"_class_name": "GeneratorConfig", "base_channels": -1}')
    with pytest.raises(ValueError) as e:
        node.execute("good")
    assert_friendly(e, "config.json")
    tiny_generator().save_pretrained(model_dirs["style"] / "good")
    (model,) = node.execute("good")  # the next run works
    assert model.config.base_channels == 4


def test_gan_stylize_node_bad_inputs_then_works(model_dirs):
    (model,) = LoadStyleModel.execute("good")
    node = GANStylize
    for name, bad in BAD_IMAGES.items():
        with pytest.raises(ValueError) as e:
            node.execute(model, bad, strength=1.0, preserve_color="none")
        assert_friendly(e, {"nan": "NaN", "inf": "Inf", "empty batch": "empty", "zero height": "empty",
                            "2 channels": "channels", "not a tensor": "IMAGE"}[name])
    with pytest.raises(ValueError) as e:
        node.execute(model, comfy(synthetic_photo(16, 16)), strength=1.0, preserve_color="sepia")
    assert_friendly(e, "sepia")
    with pytest.raises(ValueError) as e:
        node.execute("not a model", comfy(synthetic_photo(16, 16)), strength=1.0, preserve_color="none")
    assert_friendly(e, "style model")
    good = comfy(synthetic_photo(16, 20))
    with torch.inference_mode():  # as ComfyUI runs it
        (out,) = node.execute(model, good, strength=1.0, preserve_color="none")
        (gray,) = node.execute(model, good[..., :1], strength=1.0, preserve_color="none")
        (rgba,) = node.execute(model, torch.cat([good, torch.ones_like(good[..., :1])], -1), strength=1.0,
                               preserve_color="none")
    assert out.shape == (1, 16, 20, 3) and torch.isfinite(out).all()
    assert gray.shape == rgba.shape == out.shape
    assert torch.equal(rgba, out)


def test_vgg_and_style_feature_nodes_bad_inputs_then_work(model_dirs, vgg16_file, tmp_path):
    loader = LoadVGGEncoder
    (model_dirs["vgg"] / "renamed.safetensors").write_bytes(b"\x80\x04\x95" + b"\0" * 64)  # a pickle
    with pytest.raises(ValueError) as e:
        loader.execute("renamed.safetensors", "fp32")
    assert_friendly(e, "pickle", "renamed.safetensors")
    (model_dirs["vgg"] / "half.safetensors").write_bytes(vgg16_file.read_bytes()[:5000])
    with pytest.raises(ValueError) as e:
        loader.execute("half.safetensors", "fp32")
    assert_friendly(e, "half.safetensors")
    (model_dirs["vgg"] / "vgg16.safetensors").write_bytes(vgg16_file.read_bytes())
    (encoder,) = loader.execute("vgg16.safetensors", "fp32")

    features = StyleFeaturesNode
    for bad in BAD_IMAGES.values():
        with pytest.raises(ValueError) as e:
            features.execute(encoder, bad, 64)
        assert_friendly(e)
    with pytest.raises(ValueError) as e:
        features.execute(encoder, comfy(synthetic_painting(32, 32)), 64, blend_weights="a, b")
    assert_friendly(e, "blend_weights")
    with pytest.raises(ValueError) as e:
        features.execute(encoder, comfy(synthetic_painting(32, 32)), 64, blend_weights="0.5, 0.5")
    assert_friendly(e)  # two weights for one image
    with torch.inference_mode():
        (style,) = features.execute(encoder, comfy(synthetic_painting(32, 32)), 64)
    with pytest.raises(ValueError) as e:
        BlendStyleFeatures.execute(style, "junk", 0.5)
    assert_friendly(e)

    # OptimizeStylize with bad images / a style of another encoder, then a good run
    node = OptimizeStylize
    args = dict(steps=2, long_side=32, content_weight=1.0, style_weight=1.0, tv_weight=0.1, init="content",
                preserve_color="none", seed=0, start_side=32, preview_every=0)
    for bad in BAD_IMAGES.values():
        with pytest.raises(ValueError) as e:
            node.execute(encoder, bad, style, **args)
        assert_friendly(e)
    other_file = tmp_path / "other.safetensors"
    write_vgg(other_file, "vgg16", seed=5)
    from ganstyle.core.vgg import load_vgg_encoder_file
    other = load_vgg_encoder_file(other_file)
    with pytest.raises(ValueError) as e:
        node.execute(other, comfy(synthetic_photo(24, 32)), style, **args)
    assert_friendly(e, "encoder")
    with torch.inference_mode():
        (out,) = node.execute(encoder, comfy(synthetic_photo(24, 32)), style, **args)
    assert out.shape == (1, 24, 32, 3) and torch.isfinite(out).all()
