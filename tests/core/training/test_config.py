import json

import pytest

from ganstyle.core.config import config_to_dict
from ganstyle.core.errors import ConfigError
from ganstyle.core.training.config import NEW_STYLE_DEFAULTS, TrainConfig, check_run_folder, load_options, validated


def test_paths_become_tuples_and_options_round_trip():
    config = TrainConfig(content="photos", style=["a.png", "b.png"], out="runs/x", style_layer_weights=(1, 2, 3, 4, 5))
    assert config.content == ("photos",) and config.style == ("a.png", "b.png")
    assert validated(config) == config and config.style_layer_weights == (1.0, 2.0, 3.0, 4.0, 5.0)


def test_a_new_style_on_a_library_takes_the_new_style_defaults_unless_given(tmp_path):
    """TrainConfig(base=...) itself (not only the CLI) gives the norm-only run its own learning rate
    and style weight; values given win, even when equal to the general defaults; the saved options
    read back exactly, so a resumed run does not switch."""
    plain = TrainConfig(content="photos", style="a.png", out="x")
    assert (plain.lr_g, plain.lambda_style) == (1e-3, 1.0)
    new_style = TrainConfig(content="photos", style="a.png", base="library-fast", out="x")
    assert (new_style.lr_g, new_style.lambda_style) == (NEW_STYLE_DEFAULTS["lr_g"], NEW_STYLE_DEFAULTS["lambda_style"])
    given = TrainConfig(content="photos", style="a.png", base="library-fast", out="x", lr_g=1e-3, lambda_style=2)
    assert (given.lr_g, given.lambda_style) == (1e-3, 2.0)
    assert validated(new_style) == new_style and validated(given) == given
    (tmp_path / "options.json").write_text(json.dumps(config_to_dict(given)))
    assert json.loads((tmp_path / "options.json").read_text())["lr_g"] == 1e-3
    resumed = load_options(tmp_path / "options.json")
    assert (resumed.lr_g, resumed.lambda_style) == (1e-3, 2.0)


def test_resume_allows_only_resumable_changes(tmp_path):
    config = TrainConfig(content="photos", style="a.png", out=str(tmp_path))
    check_run_folder(tmp_path, config, resume=False)  # no run yet
    (tmp_path / "options.json").write_text(json.dumps(config_to_dict(config)))
    with pytest.raises(ConfigError, match="already holds a training run"):
        check_run_folder(tmp_path, config, resume=False)
    check_run_folder(tmp_path, TrainConfig(content="photos", style="a.png", out=str(tmp_path), steps=9), resume=True)
    with pytest.raises(ConfigError, match=r"options differ .*seed: 0 → 1"):
        check_run_folder(tmp_path, TrainConfig(content="photos", style="a.png", out=str(tmp_path), seed=1), resume=True)
    (tmp_path / "options.json").write_text("{oops")
    with pytest.raises(ConfigError, match="not valid JSON"):
        check_run_folder(tmp_path, config, resume=True)


def test_model_card_options_hide_local_paths(tmp_path):
    encoder = tmp_path / "vgg.safetensors"
    encoder.write_bytes(b"")
    config = TrainConfig(content="/home/me/photos", style="/home/me/art/a.png", out="/home/me/runs/x",
                         encoder=str(encoder))
    shown = config.shareable(local_encoder="vgg16")
    assert shown["content"] == ["photos"] and shown["style"] == ["a.png"] and shown["out"] == "x"
    assert shown["encoder"] == "vgg16" and "_class_name" not in shown
