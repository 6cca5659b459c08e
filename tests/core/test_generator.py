import dataclasses
import json

import pytest
import torch

from ganstyle.core.errors import ConfigError, WeightsError
from ganstyle.core.generator import GeneratorConfig, StyleGenerator, preset_config

pytestmark = pytest.mark.usefixtures("one_thread")


TINY = GeneratorConfig(base_channels=4, max_channels=8, num_downsamples=2, num_residual_blocks=1,
                       first_kernel=3, last_kernel=3)


@pytest.mark.parametrize("h,w", [(16, 16), (17, 30), (1, 1), (3, 5)])
def test_any_size_output_in_unit_range(h, w):
    g = StyleGenerator(TINY).eval()  # inference mode: instance norm accepts 1x1 maps
    y = g(torch.rand(2, 3, h, w))
    assert y.shape == (2, 3, h, w) and y.min() >= 0 and y.max() <= 1


def test_presets():
    j = StyleGenerator(preset_config("johnson"))
    assert j.config.first_kernel == 9 and j.config.num_residual_blocks == 5
    assert sum(p.numel() for p in j.parameters()) > 1_000_000
    with pytest.raises(ValueError, match="unknown generator preset 'huge'"):
        preset_config("huge")


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    g = StyleGenerator(TINY).eval()
    g.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["base_channels"] == 4
    h = StyleGenerator.from_pretrained(tmp_path / "m")
    x = torch.rand(1, 3, 20, 20)
    torch.testing.assert_close(g(x), h(x))
    assert not h.training and not any(p.requires_grad for p in h.parameters())


def test_fp16_save_half_size(tmp_path):
    g = StyleGenerator(TINY)
    g.save_pretrained(tmp_path / "a")
    g.save_pretrained(tmp_path / "b", dtype=torch.float16)
    a, b = (tmp_path / "a" / "model.safetensors").stat().st_size, (tmp_path / "b" / "model.safetensors").stat().st_size
    assert b < 0.7 * a
    StyleGenerator.from_pretrained(tmp_path / "b")


def _write_config(folder, **changes):
    StyleGenerator(TINY).save_pretrained(folder)
    data = json.loads((folder / "config.json").read_text())
    data.update(changes)
    (folder / "config.json").write_text(json.dumps(data))


@pytest.mark.parametrize("changes,pattern", [
    ({"mystery": 1}, r"unknown fields \['mystery'\]"),
    ({"base_channels": -4}, r"field 'base_channels' is -4, must be at least 1"),
    ({"num_residual_blocks": 10**9}, r"field 'num_residual_blocks' is 1000000000, must be at most 64"),
    ({"norm": "batch"}, r"field 'norm' is 'batch'"),
    ({"first_kernel": 4}, r"'first_kernel' must be odd"),
    ({"base_channels": "4"}, r"field 'base_channels' is '4' \(str\), expected int"),
])
def test_bad_config_fields_named(tmp_path, changes, pattern):
    _write_config(tmp_path, **changes)
    with pytest.raises(ConfigError, match=pattern):
        StyleGenerator.from_pretrained(tmp_path)


def test_missing_field_and_mismatched_weights(tmp_path):
    StyleGenerator(TINY).save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    del data["max_channels"]
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"missing fields \['max_channels'\]"):
        StyleGenerator.from_pretrained(tmp_path)
    other = GeneratorConfig(**{**TINY.__dict__, "base_channels": 6})
    StyleGenerator(other).save_pretrained(tmp_path)
    _write_config_text = json.loads((tmp_path / "config.json").read_text())
    _write_config_text["base_channels"] = 4
    (tmp_path / "config.json").write_text(json.dumps(_write_config_text))
    with pytest.raises(WeightsError, match=r"model\.safetensors: key 'head\.1\.weight' has shape"):
        StyleGenerator.from_pretrained(tmp_path)


# ---- fast preset, tiling geometry, loading from explicit files ----------------------------------
from ganstyle.core.generator import PRESETS, NormStatistics  # noqa: E402


def test_fast_preset_architecture():
    cfg = preset_config("fast")
    assert cfg.pixel_shuffle and cfg.stride == 8 and cfg.num_residual_blocks >= 4
    fast, johnson = StyleGenerator(cfg), StyleGenerator(preset_config("johnson"))
    assert not preset_config("johnson").pixel_shuffle
    # the head reads the 12-channel unshuffled image; the output head resizes 8 channels and ends
    # in one full-resolution convolution (no sub-pixel grid)
    assert fast.head[1].in_channels == 12 and fast.tail[-1][1].out_channels == 3
    assert fast.tail[0][1].out_channels == fast.tail[-1][1].in_channels == 8
    assert fast.activation_bytes_per_pixel() < johnson.activation_bytes_per_pixel() / 3
    assert 500_000 < sum(p.numel() for p in fast.parameters()) < 2_000_000


def test_pixel_shuffle_starts_as_nearest_upsampling():
    """ICNR initialisation: at init the four sub-pixels of each 2×2 output block are equal."""
    torch.manual_seed(0)
    g = StyleGenerator(GeneratorConfig(4, 8, 2, 1, 3, 3, pixel_shuffle=True, output_head="pixel_shuffle")).eval()
    y = g(torch.rand(1, 3, 32, 32))
    blocks = torch.nn.functional.pixel_unshuffle(y, 2).view(1, 3, 4, 16, 16)
    torch.testing.assert_close(blocks, blocks[:, :, :1].expand_as(blocks))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_receptive_radius_bounds_the_influence_of_a_pixel(name):
    cfg = dataclasses.replace(preset_config(name), base_channels=4, max_channels=8)
    torch.manual_seed(0)
    g = StyleGenerator(cfg).eval()
    x = torch.rand(1, 3, 256, 256)
    stats = NormStatistics()
    with torch.no_grad():
        with stats.record():
            base = g(x)
        x[..., 128, 128] += 1.0
        with stats.frozen():
            changed = (g(x) - base).abs().amax(dim=(0, 1)) > 0
    rows, cols = changed.nonzero(as_tuple=True)
    reach = max((rows - 128).abs().max(), (cols - 128).abs().max())
    assert g.receptive_radius() - 8 <= reach <= g.receptive_radius()


def test_pixel_shuffle_needs_a_downsample(tmp_path):
    StyleGenerator(TINY).save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    data.update(num_downsamples=0, pixel_shuffle=True)
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="'pixel_shuffle' is true but 'num_downsamples' is 0"):
        StyleGenerator.from_pretrained(tmp_path)


def test_from_files_with_named_config(tmp_path):
    torch.manual_seed(1)
    g = StyleGenerator(GeneratorConfig(4, 8, 2, 1, 3, 3, pixel_shuffle=True, output_head="pixel_shuffle")).eval()
    g.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").rename(tmp_path / "mine.safetensors")
    (tmp_path / "m" / "config.json").rename(tmp_path / "mine.json")
    h = StyleGenerator.from_files(tmp_path / "mine.safetensors", tmp_path / "mine.json")
    x = torch.rand(1, 3, 24, 40)
    torch.testing.assert_close(g(x), h(x))


def test_older_fast_configs_load_with_the_pixel_shuffle_head(tmp_path):
    """A config.json written before output_head existed means the pixel-shuffle head."""
    import json

    from ganstyle.core.config import config_from_dict
    data = json.loads(json.dumps(dataclasses.asdict(preset_config("fast"))))
    del data["output_head"]
    old = config_from_dict(GeneratorConfig, data)
    assert old.output_head == "pixel_shuffle"
    assert StyleGenerator(old).tail[1].out_channels == 12
