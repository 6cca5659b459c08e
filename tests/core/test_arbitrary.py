"""Arbitrary-style generators: norm parameters predicted from a style image's VGG statistics
(core/style_predictor.py), folded into ordinary generators for inference, and their training."""
import json

import pytest
import torch

from ganstyle.core.config import ConfigError
from ganstyle.core.errors import InputError
from ganstyle.core.features import compute_style_features
from ganstyle.core.generator import StyleGenerator
from ganstyle.core.style_predictor import STYLE_VECTOR_SIZE, StylePredictor, style_vector
from ganstyle.core.stylize import stylize
from ganstyle.core.trainer import Trainer

from helpers import (
    synthetic_painting,
    synthetic_photo,
    tiny_arbitrary,
    tiny_generator,
    tiny_library,
    tiny_train_config,
    training_data,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def two_styles(vgg16):
    return [compute_style_features(vgg16, synthetic_painting(48, 48, seed=s), style_size=48) for s in (1, 2)]


def test_style_vector_is_log_mean_and_std_per_layer(two_styles, vgg16):
    features = two_styles[0]
    v = style_vector(features)
    assert v.shape == (STYLE_VECTOR_SIZE,) and v.dtype == torch.float32
    torch.testing.assert_close(v[:64], torch.log(features.means["relu1_1"] + 1e-3))
    torch.testing.assert_close(v[64:128], torch.log(features.stds["relu1_1"] + 1e-3))
    torch.testing.assert_close(v[-512:], torch.log(features.stds["relu5_1"] + 1e-3))
    shallow = compute_style_features(vgg16, synthetic_painting(32, 32), style_size=32, layers=("relu1_1", "relu2_1"))
    with pytest.raises(InputError, match=r"lack layers \['relu3_1'"):
        style_vector(shallow)


def test_predictor_starts_at_the_mean_style_and_standardises_its_input():
    predictor = StylePredictor(embedding=3, hidden=5)
    w = predictor(torch.randn(4, STYLE_VECTOR_SIZE))
    assert w.shape == (4, 4) and bool((w[:, :3] == 0).all()) and bool((w[:, 3] == 1).all())
    vectors = torch.randn(10, STYLE_VECTOR_SIZE) * 3 + 2
    predictor.standardize(vectors)
    x = (vectors - predictor.input_shift) / predictor.input_scale
    assert float(x.mean(0).abs().max()) < 1e-4 and float((x.std(0, unbiased=False) - 1).abs().max()) < 1e-3
    with pytest.raises(InputError, match="style vectors must be"):
        predictor(torch.randn(2, 7))


def test_converted_library_reproduces_its_styles_along_the_first_directions():
    library = tiny_library()
    model = StyleGenerator.arbitrary_from(library, embedding=5, hidden=8).eval()
    assert model.config.norm_rows == 6 and model.config.num_styles == 0
    x, v = synthetic_photo(20, 28), torch.randn(1, STYLE_VECTOR_SIZE)
    with torch.no_grad():
        torch.testing.assert_close(model(x, v), library.mixed(torch.full((3,), 1 / 3))(x), atol=1e-5, rtol=0)
        model.predictor.net[2].bias[:3] = torch.tensor([0.0, 1.0, 0.0])      # embedding = style 2's direction
        torch.testing.assert_close(model(x, v), library(x, torch.tensor([[0.0, 1.0, 0.0]])), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="cannot hold"):
        StyleGenerator.arbitrary_from(library, embedding=2)


def test_for_styles_folds_the_prediction_into_ordinary_generators(tmp_path):
    model = tiny_arbitrary()
    x, vectors = synthetic_photo(20, 28), torch.randn(2, STYLE_VECTOR_SIZE)
    with torch.no_grad():
        direct = [model(x, vectors[i:i + 1]) for i in range(2)]
    assert float((direct[0] - direct[1]).abs().mean()) > 0.01          # the style vector matters
    single = model.for_styles(vectors[:1])
    assert single.config.style_embedding == 0 and single.config.norm_rows == 0 and not hasattr(single, "predictor")
    torch.testing.assert_close(single(x), direct[0], atol=1e-5, rtol=0)
    pair = model.for_styles(vectors, ["a", "b"])
    torch.testing.assert_close(pair(x, torch.tensor([[0.0, 1.0]])), direct[1], atol=1e-5, rtol=0)
    # saved and loaded with its predictor (config.json + model.safetensors)
    folder = model.save_pretrained(tmp_path / "arb")
    saved = json.loads((folder / "config.json").read_text())
    assert saved["style_embedding"] == 4 and saved["predictor_hidden"] == 8
    loaded = StyleGenerator.from_pretrained(folder)
    torch.testing.assert_close(loaded(x, vectors[1:]), direct[1])
    with pytest.raises(ValueError, match="style vectors"):
        model(x)


def test_stylize_takes_style_features_for_the_image_and_for_masked_regions(two_styles):
    model = tiny_arbitrary()
    x = synthetic_photo(24, 32)
    vectors = torch.stack([style_vector(f) for f in two_styles])
    with torch.no_grad():
        expected = [model(x, vectors[i:i + 1]) for i in range(2)]
    out = stylize(model, x, style=two_styles[0], tile=None)
    torch.testing.assert_close(out, expected[0], atol=1e-5, rtol=0)
    mask = torch.zeros(24, 32)
    mask[:, 16:] = 1.0
    regions = stylize(model, x, style=two_styles[0], masks=[(mask, two_styles[1])], tile=None)
    # exactly the masked pass of the two styles as a library (each region normalised with its own statistics)
    pair = model.for_styles(vectors, ["style 1", "style 2"])
    torch.testing.assert_close(regions, stylize(pair, x, style="style 1", masks=[(mask, "style 2")], tile=None))
    # so each half looks like its own style's result
    right, left = regions[..., -4:], regions[..., :4]
    assert (right - expected[1][..., -4:]).abs().mean() < (right - expected[0][..., -4:]).abs().mean()
    assert (left - expected[0][..., :4]).abs().mean() < (left - expected[1][..., :4]).abs().mean()


def test_palette_moves_the_result_to_each_paintings_colours(two_styles):
    model = tiny_arbitrary()
    x = synthetic_photo(24, 32)
    plain = stylize(model, x, style=two_styles[0], tile=None)
    full = stylize(model, x, style=two_styles[0], tile=None, palette=1.0)
    rgb = full[0].flatten(1)
    torch.testing.assert_close(rgb.mean(1), two_styles[0].color_mean, atol=0.02, rtol=0)
    assert float((plain[0].flatten(1).mean(1) - two_styles[0].color_mean).abs().max()) > 0.05   # it was off before
    half = stylize(model, x, style=two_styles[0], tile=None, palette=0.5)
    torch.testing.assert_close(half, (0.5 * plain + 0.5 * full), atol=1e-4, rtol=0)
    # with a mask, each region is moved to its own painting's palette
    mask = torch.zeros(24, 32)
    mask[:, 16:] = 1.0
    both = stylize(model, x, style=two_styles[0], masks=[(mask, two_styles[1])], tile=None, palette=1.0)
    torch.testing.assert_close(both[0, :, :, :16].flatten(1).mean(1), two_styles[0].color_mean, atol=0.02, rtol=0)
    torch.testing.assert_close(both[0, :, :, 16:].flatten(1).mean(1), two_styles[1].color_mean, atol=0.02, rtol=0)


def test_palette_needs_style_features_and_no_colour_mode(two_styles):
    x = synthetic_photo(16, 16)
    with pytest.raises(InputError, match="palette takes the painting's colours"):
        stylize(tiny_generator(), x, palette=0.5)
    with pytest.raises(InputError, match="pull opposite ways"):
        stylize(tiny_arbitrary(), x, style=two_styles[0], palette=0.5, color_mode="luminance")
    with pytest.raises(InputError, match=r"palette is 2.0, must be at most 1.0"):
        stylize(tiny_arbitrary(), x, style=two_styles[0], palette=2.0)


def test_arbitrary_inputs_are_checked(two_styles):
    model = tiny_arbitrary()
    x = synthetic_photo(16, 16)
    with pytest.raises(InputError, match="needs a style image's features"):
        stylize(model, x)
    with pytest.raises(InputError, match="not the style name"):
        stylize(model, x, style="story")
    model.config.style_encoder = "vgg16:another"
    with pytest.raises(InputError, match="encoder vgg16:another"):
        stylize(model, x, style=two_styles[0])
    with pytest.raises(InputError, match="styles are fixed"):
        stylize(tiny_generator(), x, style=two_styles[0])


@pytest.fixture(scope="module")
def arbitrary_data(tmp_path_factory):
    from ganstyle.core.images import save_image

    root = tmp_path_factory.mktemp("arbitrary")
    data = training_data(root)
    styles = root / "styles"
    for i in range(2):
        (styles / f"group{i}").mkdir(parents=True)
        save_image(synthetic_painting(48, 48, seed=10 + i), styles / f"group{i}" / "a.png")
    save_image(synthetic_painting(48, 48, seed=20).flip(-1), styles / "single.png")
    return data, styles


def test_arbitrary_training_reads_every_style_and_exports_a_predictor(arbitrary_data, vgg16, tmp_path):
    data, styles = arbitrary_data
    config = tiny_train_config(data, tmp_path / "run", style=(), styles=(str(styles),), arbitrary=True,
                               style_embedding=3, steps=6, warmup_steps=0)
    trainer = Trainer(config, encoder=vgg16)
    assert [s.name for s in trainer.styles.styles] == ["group0", "group1", "single"]
    assert trainer.discriminator.config.num_styles == 3
    assert trainer.styles.vectors.shape == (3, 2, STYLE_VECTOR_SIZE)
    assert sorted(trainer.styles.index_for(s) for s in range(3)) == [0, 1, 2]   # each style once per cycle
    # the style size whose vector a style gets changes from step to step
    assert {int(trainer.styles.vector_choice(s, 1)[0]) for s in range(20)} == {0, 1}
    model_dir = trainer.train()
    model = StyleGenerator.from_pretrained(model_dir)
    assert model.config.style_embedding == 3 and model.config.style_encoder == vgg16.identity
    assert float(model.predictor.net[2].weight.abs().sum()) > 0                  # the predictor trained
    assert float(model.predictor.input_scale.sub(1).abs().sum()) > 0             # and reads standardised input
    features = compute_style_features(vgg16, synthetic_painting(40, 40, seed=30), style_size=48)
    out = stylize(model, synthetic_photo(16, 24), style=features)
    assert out.shape == (1, 3, 16, 24)
    assert "3 styles" in (model_dir / "README.md").read_text()


def test_arbitrary_training_resumes_exactly(arbitrary_data, vgg16, tmp_path):
    data, styles = arbitrary_data
    options = dict(style=(), styles=(str(styles),), arbitrary=True, style_embedding=3, warmup_steps=1,
                   checkpoint_every=2)
    whole = Trainer(tiny_train_config(data, tmp_path / "whole", steps=4, **options), encoder=vgg16)
    whole.train()
    Trainer(tiny_train_config(data, tmp_path / "parts", steps=2, **options), encoder=vgg16).train()
    resumed = Trainer(tiny_train_config(data, tmp_path / "parts", steps=4, **options), encoder=vgg16, resume=True)
    resumed.train()
    assert resumed.weights_fingerprint() == whole.weights_fingerprint()


def test_arbitrary_run_checks_its_options(arbitrary_data, vgg16, tmp_path):
    data, styles = arbitrary_data
    with pytest.raises(ConfigError, match="needs 'styles'"):
        Trainer(tiny_train_config(data, tmp_path / "a", arbitrary=True), encoder=vgg16)
    with pytest.raises(ConfigError, match="at least 2 training styles"):
        Trainer(tiny_train_config(data, tmp_path / "b", style=(), styles=(data["style"],), arbitrary=True),
                encoder=vgg16)


def test_frozen_convolutions_train_only_norm_tables_and_the_predictor(arbitrary_data, vgg16, tmp_path):
    data, styles = arbitrary_data
    library_dir = tiny_library().save_pretrained(tmp_path / "library")
    config = tiny_train_config(data, tmp_path / "run", style=(), styles=(str(styles),), arbitrary=True,
                               style_embedding=4, steps=3, warmup_steps=0, init_from=str(library_dir), generator={},
                               freeze_convolutions=True)
    trainer = Trainer(config, encoder=vgg16)
    trainable = {n for n, p in trainer.generator.named_parameters() if p.requires_grad}
    assert trainable == set(trainer.generator.norm_parameter_names()) | {
        n for n, _ in trainer.generator.named_parameters() if n.startswith("predictor.")}
    before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    trainer.train()
    after = trainer.generator.state_dict()
    frozen = [k for k in before if k not in trainable and not k.startswith("predictor.")]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["predictor.net.2.weight"], after["predictor.net.2.weight"])
    with pytest.raises(ConfigError, match="needs 'init_from'"):
        Trainer(tiny_train_config(data, tmp_path / "x", style=(), styles=(str(styles),), arbitrary=True,
                                  freeze_convolutions=True), encoder=vgg16)
