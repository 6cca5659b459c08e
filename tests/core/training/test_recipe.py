"""The training recipe's own terms: tone loss, multi-scale content crops, base generators
(no style) and fine-tuning from one (``init_from``), and older runs' options loading unchanged."""
import json

import pytest
import torch

from ganstyle.core.config import config_to_dict
from ganstyle.core.trainer import TrainConfig, Trainer
from ganstyle.core.training.config import load_options

from helpers import tiny_train_config, training_data

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    return training_data(tmp_path_factory.mktemp("data"), photos=3)


def config(data, out, **changes) -> TrainConfig:
    return tiny_train_config(data, out, **{"steps": 3, "num_previews": 1, **changes})


def test_default_recipe_adds_the_tone_term_and_caches_photos_without_enlarging(data, vgg16, tmp_path):
    trainer = Trainer(config(data, tmp_path / "run"), encoder=vgg16)
    # photos smaller than content_size (1024) stay at their size; crops take random scales
    assert {tuple(img.shape[-2:]) for img in trainer.content_images.images} == {(40, 52)}
    assert trainer.content_sampler.scale_min == 0.5 and trainer.content_sampler.jitter == 0.1
    losses = trainer.optimize_parameters(0)
    assert {"content", "style", "tv", "tone", "loss_g"} <= set(losses)
    expected = (trainer.config.lambda_content * losses["content"] + trainer.config.lambda_style * losses["style"]
                + trainer.config.lambda_tv * losses["tv"] + trainer.config.lambda_tone * losses["tone"])
    torch.testing.assert_close(losses["loss_g"], expected, rtol=1e-5, atol=1e-6)


def test_base_generator_trains_without_style_and_fine_tuning_starts_from_it(data, vgg16, tmp_path):
    base_options = config(data, tmp_path / "base", style=(), lambda_style=0.0, lambda_adv=0.0, lambda_tone=0.0,
                          lambda_pixel=10.0, steps=2)
    base = Trainer(base_options, encoder=vgg16)
    assert len(base.style_images) == 0 and base.style_sampler is None
    losses = base.optimize_parameters(0)
    assert set(losses) == {"content", "style", "tv", "pixel", "loss_g"} and float(losses["style"]) == 0.0
    model_dir = base.train()

    tuned = Trainer(config(data, tmp_path / "tuned", init_from=str(model_dir), preset="johnson"), encoder=vgg16)
    exported = base.ema_generator.state_dict()
    assert tuned.generator.config == base.generator.config          # the base's architecture, not 'johnson'
    for name, tensor in tuned.generator.state_dict().items():
        torch.testing.assert_close(tensor, exported[name].float(), rtol=0, atol=0)


def test_style_is_still_required_when_a_style_loss_is_asked_for(data, tmp_path):
    with pytest.raises(ValueError, match="'style' is empty"):
        config(data, tmp_path / "run", style=()).validate()


def test_options_of_an_older_run_load_with_the_old_recipe(data, tmp_path):
    saved = config_to_dict(config(data, tmp_path / "run"))
    for field in ("lambda_tone", "tone_pool", "lambda_pixel", "init_from", "content_size", "crop_scale_min",
                  "color_jitter"):
        del saved[field]
    path = tmp_path / "options.json"
    path.write_text(json.dumps(saved))
    old = load_options(path)
    assert (old.lambda_tone, old.lambda_pixel, old.init_from, old.content_size, old.crop_scale_min,
            old.color_jitter) == (0.0, 0.0, "", 0, 1.0, 0.0)


def test_the_shipped_base_generator_is_a_start_not_a_style(data, tmp_path):
    from ganstyle.core.hub import registry_names
    from ganstyle.core.models import default_style_model, load_style_model
    from ganstyle.core.training.setup import initial_generator

    assert "base-fast" not in registry_names("style") and default_style_model() != "base-fast"
    start = initial_generator(config(data, tmp_path / "run", init_from="base-fast"))
    shipped = load_style_model("base-fast", use_cache=False).generator
    assert start.config.output_head == "upsample" and start.training
    for name, tensor in start.state_dict().items():
        assert tensor.dtype == torch.float32
        torch.testing.assert_close(tensor, shipped.state_dict()[name].float(), rtol=0, atol=0)
