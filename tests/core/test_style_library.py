"""Style libraries: many styles over shared convolutions (conditional instance norm), blends and
masks in one pass, and library training (every style trained, a style-conditioned discriminator)."""
import json

import pytest
import torch

from ganstyle.core.config import ConfigError
from ganstyle.core.discriminator import DiscriminatorConfig, PatchDiscriminator
from ganstyle.core.errors import InputError
from ganstyle.core.generator import StyleGenerator
from ganstyle.core.style_choice import parse_style_spec, style_weights, weight_maps
from ganstyle.core.stylize import stylize
from ganstyle.core.trainer import Trainer

from helpers import synthetic_painting, synthetic_photo, tiny_generator, tiny_library, tiny_train_config, training_data

pytestmark = pytest.mark.usefixtures("one_thread")

def test_library_saves_and_loads_with_its_style_records(tmp_path):
    library = tiny_library()
    folder = library.save_pretrained(tmp_path / "lib")
    saved = json.loads((folder / "config.json").read_text())
    assert [s["name"] for s in saved["styles"]] == ["ink", "oil", "chalk"] and saved["styles"][0]["licence"] == "CC0"
    loaded = StyleGenerator.from_pretrained(folder)
    assert loaded.style_names == ["ink", "oil", "chalk"]
    x = synthetic_photo(20, 28)
    w = torch.tensor([[0.0, 1.0, 0.0]])
    torch.testing.assert_close(loaded(x, w), library(x, w))
    # a single-style model keeps loading as before (no 'styles' field: the legacy value, no styles)
    single = tiny_generator().save_pretrained(tmp_path / "single")
    config = json.loads((single / "config.json").read_text())
    del config["styles"]
    (single / "config.json").write_text(json.dumps(config))
    assert StyleGenerator.from_pretrained(single).config.num_styles == 0


@pytest.mark.parametrize("styles,message", [
    (({"name": "a"}, {"name": "a"}), "duplicate names"),
    (({"name": ""},), "non-empty 'name'"),
    (({"name": "a", "colour": "red"},), "keys must be"),
])
def test_bad_style_records_are_config_errors(tmp_path, styles, message):
    folder = tiny_generator().save_pretrained(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["styles"] = list(styles)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=message):
        StyleGenerator.from_pretrained(tmp_path / "m")


def test_each_style_is_its_own_model_and_a_blend_is_the_mixed_model():
    library = tiny_library()
    x = synthetic_photo(24, 32)
    eye = torch.eye(3)
    outs = [library(x, eye[i:i + 1]) for i in range(3)]
    assert min((outs[i] - outs[j]).abs().mean() for i in range(3) for j in range(i)) > 0.01   # distinct styles
    mix = torch.tensor([0.2, 0.0, 0.8])
    blended = library(x, mix[None])
    torch.testing.assert_close(library.mixed(mix)(x), blended, atol=1e-6, rtol=0)   # exact: norm affine is linear
    assert library.mixed(mix).config.num_styles == 0
    torch.testing.assert_close(library.subset([2])(x, torch.ones(1, 1)), outs[2])
    # the weights per pixel, constant over the image, are the same thing
    maps = mix.view(1, 3, 1, 1).expand(1, 3, 24, 32)
    torch.testing.assert_close(library(torch.cat([x, maps], 1)), blended, atol=1e-6, rtol=0)


def test_style_inputs_are_checked():
    library, single = tiny_library(), tiny_generator()
    x = synthetic_photo(16, 16)
    with pytest.raises(ValueError, match="needs style weights"):
        library(x)
    with pytest.raises(ValueError, match="single-style generator"):
        single(x, torch.ones(1, 1))
    with pytest.raises(InputError, match=r"unknown style\(s\) \['pastel'\]; this library has"):
        stylize(library, x, style="pastel")
    with pytest.raises(InputError, match="needs a style: one of"):
        stylize(library, x)
    with pytest.raises(InputError, match="one style; styles and masks apply to a style library"):
        stylize(single, x, style="ink")
    with pytest.raises(InputError, match="weight must be a finite number"):
        parse_style_spec("ink:-1")
    assert parse_style_spec({"ink": 1, "oil": 3}) == {"ink": 1.0, "oil": 3.0}
    torch.testing.assert_close(style_weights(library, "oil:1, chalk:3"), torch.tensor([0.0, 0.25, 0.75]))


def test_masks_give_each_region_its_style_in_one_pass_without_a_seam():
    """Each region takes its own style (normalised with its own region's statistics, so close to,
    not equal to, the single-style result there); at a hard mask edge the result steps no more
    than pasting the two single-style results together would (no extra seam line), and a soft
    mask spreads the change over its ramp."""
    library = tiny_library()
    x = synthetic_photo(48, 96)
    ink, oil = (stylize(library, x, style=s, dtype="fp32") for s in ("ink", "oil"))
    mask = torch.zeros(48, 96)
    mask[:, 48:] = 1
    both = stylize(library, x, style="ink", masks=[(mask, "oil")], dtype="fp32")
    left, right = (slice(None), slice(None), slice(None), slice(0, 20)), (slice(None),) * 3 + (slice(76, None),)
    assert (both - ink)[left].abs().mean() < 0.75 * (both - oil)[left].abs().mean()
    assert (both - oil)[right].abs().mean() < 0.75 * (both - ink)[right].abs().mean()

    def step(img):   # the largest change between the two pixel columns at the edge
        return (img[..., 48] - img[..., 47]).abs().max()
    pasted = torch.cat([ink[..., :48], oil[..., 48:]], -1)
    assert step(both) <= 1.1 * step(pasted)
    # a soft mask of the same region, at another resolution, blends the styles over its ramp
    soft = torch.linspace(-3, 3, 96).sigmoid().expand(12, 96)[None, None]
    softly = stylize(library, x, style="ink", masks=[(soft, "oil")], dtype="fp32")
    assert step(softly) < step(both)


def test_masks_tile_exactly():
    """Per-pixel style weights are cut with the image: tiled equals untiled (exact statistics)."""
    library = tiny_library()
    x = synthetic_photo(70, 150)
    mask = torch.zeros(1, 70, 150)
    mask[..., 40:, 60:] = 1
    whole = stylize(library, x, style="ink:0.5, chalk:0.5", masks=[(mask, "oil")], dtype="fp32", tile=None)
    tiled = stylize(library, x, style="ink:0.5, chalk:0.5", masks=[(mask, "oil")], dtype="fp32", tile=48,
                    overlap=8)
    gathered = stylize(library, x, style="ink:0.5, chalk:0.5", masks=[(mask, "oil")], dtype="fp32", tile=48,
                       overlap=8, max_memory=48 * 48 * library.activation_bytes_per_pixel())
    torch.testing.assert_close(tiled, whole, atol=2e-5, rtol=0)
    torch.testing.assert_close(gathered, whole, atol=2e-5, rtol=0)


def test_region_statistics_match_float64_when_the_mean_dwarfs_the_spread():
    """Per-region mean/variance come from float32 matrix products: squares taken about each
    channel's mean keep the variance of a channel at 1000 ± 0.01 as exact as float64 would."""
    from ganstyle.core.norm_statistics import _weighted_moments

    g = torch.Generator().manual_seed(0)
    x = 1000 + 0.01 * torch.randn(2, 3, 32, 40, generator=g)
    weights = torch.rand(2, 2, 32, 40, generator=g)
    n, mean, m2 = _weighted_moments(x, weights)
    xd, wd = x.double(), weights.double()
    ref_n = wd.sum((2, 3))[..., None]
    ref_mean = torch.einsum("bkhw,bchw->bkc", wd, xd) / ref_n
    ref_var = torch.einsum("bkhw,bkchw->bkc", wd, (xd[:, None] - ref_mean[..., None, None]) ** 2) / ref_n
    torch.testing.assert_close(n, ref_n, rtol=1e-6, atol=0)
    torch.testing.assert_close(mean, ref_mean, rtol=1e-7, atol=0)
    torch.testing.assert_close(m2 / n, ref_var, rtol=2e-3, atol=0)


def test_weight_maps_share_overlaps_and_fill_the_background():
    library = tiny_library()
    a, b = torch.zeros(4, 4), torch.zeros(4, 4)
    a[:, :3], b[:, 1:] = 1, 1        # columns 1-2 are in both masks, column 3 only in b
    maps = weight_maps(library, (4, 4), 1, "chalk", [(a, "ink"), (b, "oil")])
    torch.testing.assert_close(maps.sum(1), torch.ones(1, 4, 4))
    torch.testing.assert_close(maps[0, :, 0, 1], torch.tensor([0.5, 0.5, 0.0]))
    torch.testing.assert_close(maps[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(maps[0, :, 0, 3], torch.tensor([0.0, 1.0, 0.0]))
    with pytest.raises(InputError, match="without a style"):
        weight_maps(library, (4, 4), 1, None, [(a, "ink")])
    with pytest.raises(InputError, match="mask 1 must be shaped"):
        weight_maps(library, (4, 4), 1, "ink", [(torch.ones(1, 2, 4, 4), "oil")])


def test_library_starts_from_a_single_style_model():
    single = tiny_generator()
    library = StyleGenerator.library_from(single, [{"name": "a"}, {"name": "b"}])
    x = synthetic_photo(16, 24)
    for i in range(2):
        torch.testing.assert_close(library(x, torch.eye(2)[i:i + 1]), single(x))


def test_projection_discriminator_judges_each_style():
    d = PatchDiscriminator(DiscriminatorConfig(base_channels=4, num_layers=2, num_styles=3))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        d.scales[0].style_embedding.normal_()
    a, b = d(x, torch.tensor([0, 0]))[0], d(x, torch.tensor([2, 2]))[0]
    assert a.shape == (2, 1, 6, 6) and (a - b).abs().mean() > 1e-3
    with pytest.raises(InputError, match="needs \\(B,\\) style indices"):
        d(x)


@pytest.fixture(scope="module")
def library_data(tmp_path_factory):
    from ganstyle.core.images import save_image
    root = tmp_path_factory.mktemp("library_data")
    data = training_data(root)
    save_image(synthetic_painting(48, 48, seed=5).flip(-1), root / "second.png")
    (root / "domain").mkdir()
    for i in range(2):
        save_image(synthetic_painting(48, 48, seed=7 + i), root / "domain" / f"work{i}.png")
    return data, root


def test_library_training_trains_every_style_and_exports_a_library(library_data, vgg16, tmp_path):
    data, root = library_data
    config = tiny_train_config(data, tmp_path / "run", style=(), steps=6, warmup_steps=0,
                               styles=(f"one={data['style']}", str(root / "second.png"), str(root / "domain")),
                               style_info={"one": {"licence": "CC0", "author": "me"}})
    trainer = Trainer(config, encoder=vgg16)
    assert trainer.discriminator.config.num_styles == 3
    before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    model_dir = trainer.train()
    library = StyleGenerator.from_pretrained(model_dir)
    assert library.style_names == ["one", "second", "domain"]
    assert library.config.styles[0] == {"name": "one", "source": "style.png", "licence": "CC0", "author": "me"}
    assert library.config.styles[2]["source"] == "domain"
    after = trainer.generator.state_dict()
    norm = next(iter(trainer.generator.style_norms()))
    moved = (after[f"{norm}.weight"] - before[f"{norm}.weight"]).abs().sum(1)
    assert bool((moved > 0).all())                  # every style's row was trained
    runs = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert set(runs["data"]["styles"]) == {"one", "second", "domain"}
    card = (model_dir / "README.md").read_text()
    assert "second" in card and "domain" in card


def test_library_run_checks_its_options(library_data, vgg16, tmp_path):
    data, root = library_data
    with pytest.raises(ConfigError, match="both given"):
        Trainer(tiny_train_config(data, tmp_path / "a", styles=(data["style"],)), encoder=vgg16)
    with pytest.raises(ConfigError, match="appear more than once"):
        Trainer(tiny_train_config(data, tmp_path / "b", style=(), styles=(data["style"], data["style"])),
                encoder=vgg16)
    with pytest.raises(ConfigError, match="not among the styles"):
        Trainer(tiny_train_config(data, tmp_path / "c", style=(), styles=(data["style"],),
                                  style_info={"nope": {}}), encoder=vgg16)


def test_library_fine_tunes_from_a_single_style_model(library_data, vgg16, tmp_path):
    data, root = library_data
    base_dir = tiny_generator(3).save_pretrained(tmp_path / "base")
    config = tiny_train_config(data, tmp_path / "run", style=(), steps=1, init_from=str(base_dir), generator={},
                               styles=(data["style"], str(root / "second.png")))
    trainer = Trainer(config, encoder=vgg16)
    x = synthetic_photo(16, 24)
    base = StyleGenerator.from_pretrained(base_dir)
    with torch.no_grad():
        torch.testing.assert_close(trainer.generator.eval()(x, torch.tensor([[0.0, 1.0]])), base(x))


def test_a_new_style_trains_only_its_norm_parameters_and_becomes_a_style_file(library_data, vgg16, tmp_path):
    from ganstyle.core.errors import WeightsError
    from ganstyle.core.style_files import add_styles, read_style_file, read_style_record

    data, root = library_data
    library = tiny_library()
    lib_dir = library.save_pretrained(tmp_path / "lib")
    config = tiny_train_config(data, tmp_path / "run", style=str(root / "second.png"), steps=3, base=str(lib_dir),
                               generator={}, style_info={"stripes": {"licence": "CC0"}})
    trainer = Trainer(config, encoder=vgg16)
    trainable = {n for n, p in trainer.generator.named_parameters() if p.requires_grad}
    assert trainable == set(trainer.generator.norm_parameter_names())
    model_dir = trainer.train()
    new_style = StyleGenerator.from_pretrained(model_dir)
    shared = {k: v for k, v in library.state_dict().items() if k not in set(library.norm_parameter_names())}
    for key, value in shared.items():          # the library's convolutions did not move
        torch.testing.assert_close(new_style.state_dict()[key], value, msg=key)
    style_dir = tmp_path / "run" / "style"
    size = (style_dir / "style.safetensors").stat().st_size
    assert size < 4096 < sum(p.numel() * 4 for p in library.parameters())     # kilobytes, not a model
    record, tensors, _ = read_style_file(style_dir)
    assert record == {"name": "stripes", "source": "second.png", "licence": "CC0"}
    assert read_style_record(style_dir)["base"] == str(lib_dir)        # what users load it with
    grown = add_styles(library, [style_dir])
    assert grown.style_names == ["ink", "oil", "chalk", "stripes"]
    x = synthetic_photo(20, 28)
    torch.testing.assert_close(grown(x, torch.tensor([[0.0, 0.0, 0.0, 1.0]])), new_style(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(grown(x, torch.tensor([[1.0, 0.0, 0.0, 0.0]])),
                               library(x, torch.tensor([[1.0, 0.0, 0.0]])), atol=1e-6, rtol=0)
    with pytest.raises(WeightsError, match="already in the library"):
        add_styles(grown, [style_dir])
    with pytest.raises(WeightsError, match="trained on another library"):
        add_styles(tiny_library(seed=1).__class__.library_from(tiny_generator(5), [{"name": "x"}]), [style_dir])
    with pytest.raises(WeightsError, match="not a style file"):
        add_styles(library, [tmp_path])
