import numpy as np
import pytest
import torch
from PIL import Image

from ganstyle.core.generator import StyleGenerator
from ganstyle.core.images import load_image, save_image
from ganstyle.core.stylize import StylizeOptions, stylize
from ganstyle.train_cli.__main__ import build_parser, main
from ganstyle.train_cli.options import options_from_args

from helpers import tiny_generator

pytestmark = pytest.mark.usefixtures("one_thread", "auto_is_fp32")



@pytest.fixture
def model_dir(tmp_path):
    return tiny_generator().save_pretrained(tmp_path / "model")


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    g = torch.Generator().manual_seed(0)
    save_image(torch.rand(3, 40, 52, generator=g), root / "a.png")
    save_image(torch.rand(3, 33, 30, generator=g), root / "sub" / "b.jpg")
    (root / "notes.txt").write_text("not an image")
    return root


def _png(path):
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]


def test_single_file_to_file(model_dir, photos, tmp_path, capsys):
    out = tmp_path / "result.png"
    assert main(["stylize", str(photos / "a.png"), "-o", str(out), "--model", str(model_dir), "--device", "cpu"]) == 0
    expected = stylize(StyleGenerator.from_pretrained(model_dir), load_image(photos / "a.png"))
    torch.testing.assert_close(_png(out), expected, atol=1 / 255 + 1e-6, rtol=0)
    assert "wrote 1 image(s)" in capsys.readouterr().out


def test_folders_strength_color_and_tiles(model_dir, photos, tmp_path):
    out = tmp_path / "out"
    assert main(["stylize", str(photos), "-o", str(out), "--model", str(model_dir / "model.safetensors"),
                 "--strength", "0"]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["a.png", "sub/b.png"]
    torch.testing.assert_close(_png(out / "a.png"), load_image(photos / "a.png"))  # strength 0 = input
    # --preserve-color without a value means luminance; --tile forces tiles; both reach the engine
    assert main(["stylize", str(photos / "sub" / "b.jpg"), "-o", str(tmp_path / "c.png"), "--model", str(model_dir),
                 "--preserve-color", "--tile", "64", "--overlap", "8"]) == 0
    expected = stylize(StyleGenerator.from_pretrained(model_dir), load_image(photos / "sub" / "b.jpg"),
                       color_mode="luminance")
    torch.testing.assert_close(_png(tmp_path / "c.png"), expected, atol=1 / 255 + 1e-5, rtol=0)


def test_refuses_to_lose_files(model_dir, photos, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["stylize", str(photos), "-o", str(out), "--model", str(model_dir)]
    assert main(args) == 0
    before = (out / "a.png").read_bytes()
    assert main(args + ["--strength", "0.5"]) == 2
    assert "2 output file(s) already exist" in capsys.readouterr().err
    assert (out / "a.png").read_bytes() == before
    assert main(args + ["--strength", "0.5", "--overwrite"]) == 0
    assert (out / "a.png").read_bytes() != before
    assert main(["stylize", str(photos / "a.png"), "-o", str(photos), "--model", str(model_dir), "--overwrite"]) == 2
    assert "is an input image" in capsys.readouterr().err
    assert main(["stylize", str(photos), "-o", str(tmp_path / "x.png"), "--model", str(model_dir)]) == 2
    assert "there are 2 input images" in capsys.readouterr().err


@pytest.mark.parametrize("extra,message", [
    (["--model", "does-not-exist"], "cannot resolve weights reference 'does-not-exist'"),
    (["--strength", "3"], "ganstyle stylize: error: --strength is 3.0, must be at most 1.0"),
    (["--tile", "big"], "--tile must be 'auto', 'none' or a number of pixels, got 'big'"),
])
def test_errors(model_dir, photos, tmp_path, capsys, extra, message):
    args = ["stylize", str(photos / "a.png"), "-o", str(tmp_path / "o"), "--model", str(model_dir), *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert main(["stylize", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o"), "--model", str(model_dir)]) == 2


def test_flags_set_stylize_options():
    """--strength, --overlap, --dtype/--precision and --tile-statistics are StylizeOptions' fields;
    what is not given keeps the field's default."""
    args = build_parser().parse_args(["stylize", "a.png", "-o", "out", "--precision", "bf16",
                                      "--tile-statistics", "thumbnail", "--preserve-color"])
    given = options_from_args(args, StylizeOptions)
    assert given == {"precision": "bf16", "tile_statistics": "thumbnail", "color_mode": "luminance"}
    assert StylizeOptions(**given).strength == StylizeOptions.strength
    assert options_from_args(build_parser().parse_args(["stylize", "a.png", "-o", "out"]), StylizeOptions) == {}


def test_default_model_is_the_shipped_one(tmp_path):
    src = tmp_path / "in.png"
    save_image(torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(0)), src)
    out = tmp_path / "out.png"
    assert main(["stylize", str(src), "-o", str(out), "--device", "cpu", "--dtype", "fp32"]) == 0
    result = load_image(out)
    assert result.shape == (1, 3, 24, 32) and (result - load_image(src)).abs().mean() > 0.05


def test_unreadable_files_are_skipped_with_one_warning(model_dir, photos, tmp_path, capsys):
    """The same rule as `train`: unreadable files are skipped and counted in one warning line, the
    rest are written, exit 0; exit 2 only when nothing could be read."""
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    out = tmp_path / "out"
    assert main(["stylize", str(photos), "-o", str(out), "--model", str(model_dir), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith("ganstyle stylize: warning: skipped 1 of 3 files")
    assert "broken.jpg" in warnings[0]
    assert (out / "a.png").is_file() and (out / "sub" / "b.png").is_file() and not (out / "broken.png").exists()
    assert "wrote 2 image(s)" in captured.out

    assert main(["stylize", str(photos / "broken.jpg"), "-o", str(tmp_path / "x.png"), "--model", str(model_dir),
                 "--device", "cpu"]) == 2
    assert "none of the 1 input image(s) could be read" in capsys.readouterr().err


def test_help_says_the_suffix_picks_the_format(capsys):
    with pytest.raises(SystemExit):
        main(["stylize", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "suffix picks the format" in text and "skipped with one warning line" in text


def test_pipeline_keeps_order_skips_unreadable_and_stops_on_a_failed_write(tmp_path):
    """Reads run ahead and writes run behind the network, but each result lands in its own file;
    an unreadable input is skipped; a write that fails stops the run with its error."""
    from ganstyle.train_cli.stylize import stylize_files

    sources = []
    for i in range(5):
        sources.append(save_image(torch.full((3, 8, 8), i / 10), tmp_path / "in" / f"{i}.png"))
    sources[2].write_bytes(b"not a png")
    plan = [(src, tmp_path / "out" / src.name) for src in sources]
    seen = []
    skipped = stylize_files(plan, lambda image: seen.append(image.mean().item()) or image + 0.5)
    assert [src.name for src, _ in skipped] == ["2.png"]
    assert seen == pytest.approx([0.0, 0.1, 0.3, 0.4], abs=1 / 255)
    for i in (0, 1, 3, 4):
        assert load_image(tmp_path / "out" / f"{i}.png").mean().item() == pytest.approx(i / 10 + 0.5, abs=2 / 255)

    (tmp_path / "out2" / "1.png").mkdir(parents=True)          # the second result cannot be written
    plan = [(src, tmp_path / "out2" / src.name) for src in sources[:2] + sources[3:]]
    with pytest.raises(OSError):
        stylize_files(plan, lambda image: image)
    assert (tmp_path / "out2" / "0.png").is_file()


def test_style_image_drives_an_arbitrary_style_model(photos, tmp_path, vgg16_file, capsys):
    from ganstyle.core.features import compute_style_features
    from ganstyle.core.vgg import load_vgg_encoder_file

    from helpers import synthetic_painting, tiny_arbitrary

    encoder = load_vgg_encoder_file(vgg16_file)
    model_dir = tiny_arbitrary(encoder=encoder.identity).save_pretrained(tmp_path / "arbitrary")
    save_image(synthetic_painting(48, 64), tmp_path / "painting.png")
    out = tmp_path / "out.png"
    assert main(["stylize", str(photos / "a.png"), "-o", str(out), "--model", str(model_dir), "--device", "cpu",
                 "--style-image", str(tmp_path / "painting.png"), "--encoder", str(vgg16_file),
                 "--style-size", "64"]) == 0
    features = compute_style_features(encoder, load_image(tmp_path / "painting.png"), style_size=64)
    expected = stylize(StyleGenerator.from_pretrained(model_dir), load_image(photos / "a.png"), style=features)
    torch.testing.assert_close(_png(out), expected, atol=1 / 255 + 1e-4, rtol=0)
    assert main(["stylize", str(photos / "a.png"), "-o", str(tmp_path / "p.png"), "--model", str(model_dir),
                 "--device", "cpu", "--style-image", str(tmp_path / "painting.png"), "--encoder", str(vgg16_file),
                 "--style-size", "64", "--palette", "0.6"]) == 0
    expected = stylize(StyleGenerator.from_pretrained(model_dir), load_image(photos / "a.png"), style=features,
                       palette=0.6)
    torch.testing.assert_close(_png(tmp_path / "p.png"), expected, atol=1 / 255 + 1e-4, rtol=0)
    assert main(["stylize", str(photos / "a.png"), "-o", str(tmp_path / "x.png"), "--model", str(model_dir),
                 "--device", "cpu"]) == 2
    assert "give the style as --style-image" in capsys.readouterr().err
    single = tiny_generator().save_pretrained(tmp_path / "single")
    assert main(["stylize", str(photos / "a.png"), "-o", str(tmp_path / "y.png"), "--model", str(single),
                 "--style-image", str(tmp_path / "painting.png")]) == 2
    assert "needs an any-style model" in capsys.readouterr().err


def test_style_image_drives_the_encoder_decoder_offline_with_its_own_encoder(photos, tmp_path, vgg16, capsys):
    """The encoder–decoder carries its encoder: paintings are measured with it (no --encoder, no
    download), and the result equals the library's for the same painting."""
    from ganstyle.core.decoder import EncoderDecoder
    from ganstyle.core.features import compute_style_features

    from helpers import synthetic_painting, tiny_encoder_decoder

    model_dir = tiny_encoder_decoder(vgg16).save_pretrained(tmp_path / "any")
    save_image(synthetic_painting(48, 64), tmp_path / "painting.png")
    out = tmp_path / "out.png"
    assert main(["stylize", str(photos / "a.png"), "-o", str(out), "--model", str(model_dir), "--device", "cpu",
                 "--style-image", str(tmp_path / "painting.png"), "--style-size", "64"]) == 0
    model = EncoderDecoder.from_pretrained(model_dir)
    features = compute_style_features(model.encoder, load_image(tmp_path / "painting.png"), style_size=64,
                                      layers=model.config.levels)
    expected = stylize(model, load_image(photos / "a.png"), style=features)
    torch.testing.assert_close(_png(out), expected, atol=1 / 255 + 1e-4, rtol=0)
    assert main(["stylize", str(photos / "a.png"), "-o", str(tmp_path / "n.png"), "--model", str(model_dir),
                 "--device", "cpu", "--style", "ink"]) == 2
    assert "--style-image" in capsys.readouterr().err and not (tmp_path / "n.png").exists()


def test_style_image_without_a_model_uses_the_shipped_any_style_model(photos, tmp_path, capsys):
    """--style-image alone: the registry's any-style default, measured with its own encoder (offline)."""
    from helpers import synthetic_painting

    save_image(synthetic_painting(48, 64), tmp_path / "painting.png")
    out = tmp_path / "out.png"
    assert main(["stylize", str(photos / "a.png"), "-o", str(out), "--device", "cpu",
                 "--style-image", str(tmp_path / "painting.png"), "--style-size", "64"]) == 0
    assert "model: any-style" in capsys.readouterr().err
    assert _png(out).shape == load_image(photos / "a.png").shape
