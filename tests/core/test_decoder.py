"""The encoder–decoder model (core/decoder.py): architecture, files, strict loading."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from ganstyle.core.decoder import EncoderDecoder, EncoderDecoderConfig, LevelDecoder
from ganstyle.core.errors import ConfigError, WeightsError

from helpers import tiny_encoder_decoder


@pytest.mark.parametrize("level, channels, scale", [("relu1_1", 64, 1), ("relu2_1", 128, 2), ("relu3_1", 256, 4),
                                                    ("relu4_1", 512, 8)])
def test_each_level_decodes_back_to_full_resolution_without_transposed_convolutions(level, channels, scale):
    decoder = LevelDecoder("vgg16", level, 16)
    out = decoder(torch.rand(1, channels, 5, 6))
    assert out.shape == (1, 3, 5 * scale, 6 * scale)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in decoder.modules())
    pads = [m for m in decoder.modules() if isinstance(m, nn.ReflectionPad2d)]
    assert len(pads) == sum(isinstance(m, nn.Conv2d) for m in decoder.modules())


def test_receptive_radius_bounds_what_one_input_pixel_changes(vgg16):
    model = tiny_encoder_decoder(vgg16)
    x = torch.rand(1, 3, 64, 64)
    y = x.clone()
    y[..., 32, 32] += 0.5
    for level in model.levels:
        with torch.no_grad():
            changed = (model.reconstruct(x, level) - model.reconstruct(y, level)).abs().sum(1)[0] > 0
        rows, cols = changed.nonzero(as_tuple=True)
        reach = max(int((rows - 32).abs().max()), int((cols - 32).abs().max()))
        assert 0 < reach <= model.receptive_radius(level)


def test_save_and_load_round_trip_gives_the_same_pictures(vgg16, tmp_path):
    model = tiny_encoder_decoder(vgg16)
    model.save_pretrained(tmp_path / "m")
    loaded = EncoderDecoder.from_pretrained(tmp_path / "m")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.reconstruct(x, "relu2_1"), model.reconstruct(x, "relu2_1"))
    assert loaded.config == model.config and loaded.encoder.identity == vgg16.identity
    assert json.loads((tmp_path / "m" / "config.json").read_text())["_class_name"] == "EncoderDecoderConfig"


def test_fp16_files_are_half_the_size_and_load_in_fp32(vgg16, tmp_path):
    model = tiny_encoder_decoder(vgg16)
    model.save_pretrained(tmp_path / "a")
    model.save_pretrained(tmp_path / "b", dtype=torch.float16)
    size = lambda p: (p / "model.safetensors").stat().st_size  # noqa: E731
    assert size(tmp_path / "b") < 0.55 * size(tmp_path / "a")
    assert EncoderDecoder.from_pretrained(tmp_path / "b").encoder.dtype == torch.float32


def test_a_truncated_or_mismatched_file_is_refused_by_name(vgg16, tmp_path):
    model = tiny_encoder_decoder(vgg16)
    folder = model.save_pretrained(tmp_path / "m")
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated"):
        EncoderDecoder.from_pretrained(folder)
    weights.write_bytes(data)
    config = json.loads((folder / "config.json").read_text())
    config["levels"] = ["relu3_1", "relu2_1", "relu1_1"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="missing keys"):
        EncoderDecoder.from_pretrained(folder)


@pytest.mark.parametrize("levels, message", [((), "at least one"), (("relu1_1", "relu2_1"), "coarse to fine"),
                                             (("relu4_2",), "cannot be decoded")])
def test_bad_levels_are_config_errors(tmp_path, levels, message):
    from ganstyle.core.config import config_to_dict

    data = config_to_dict(EncoderDecoderConfig())
    data["levels"] = list(levels)
    (tmp_path / "config.json").write_text(json.dumps(data))
    from ganstyle.core.config import load_config
    with pytest.raises(ConfigError, match=message):
        load_config(EncoderDecoderConfig, tmp_path)


def test_models_of_separate_runs_combine_coarse_to_fine(vgg16):
    from ganstyle.core.decoder import combine_models, new_encoder_decoder

    coarse = new_encoder_decoder(vgg16, ("relu2_1",))
    fine = tiny_encoder_decoder(vgg16, levels=("relu1_1",), full_channels=32)
    both = combine_models(fine, coarse)
    assert both.levels == ("relu2_1", "relu1_1") and both.encoder.deepest == "relu2_1"
    for level, source in (("relu2_1", coarse), ("relu1_1", fine)):
        for key, value in source.decoders[level].state_dict().items():
            assert torch.equal(both.decoders[level].state_dict()[key], value)
    other = new_encoder_decoder(vgg16, ("relu1_1",))
    other.config.style_encoder = "vgg16:else"
    with pytest.raises(ConfigError, match="different encoders"):
        combine_models(coarse, other)


def test_files_from_before_the_input_scale_load_with_scale_one(vgg16, tmp_path):
    from safetensors.torch import load_file, save_file

    model = tiny_encoder_decoder(vgg16)
    folder = model.save_pretrained(tmp_path / "m")
    state = {k: v for k, v in load_file(folder / "model.safetensors").items() if not k.endswith("input_scale")}
    save_file(state, folder / "model.safetensors")
    loaded = EncoderDecoder.from_pretrained(folder)
    assert all(float(d.input_scale) == 1.0 for d in loaded.decoders.values())


def test_hybrid_fusion_keeps_the_coarsest_level_adain_and_the_finer_ones_wct():
    config = EncoderDecoderConfig(fusion="hybrid")
    assert [config.fusion_at(lv) for lv in config.levels] == ["adain", "wct", "wct"]
    assert EncoderDecoderConfig(fusion="adain").fusion_at("relu1_1") == "adain"
