"""``ganstyle demo``: runs offline on the shipped samples and writes a PNG."""
import re

import pytest
import torch
from PIL import Image

from ganstyle.train_cli.__main__ import main
from ganstyle.train_cli.demo import SAMPLES, random_vgg16


def test_demo_stylises_with_shipped_model(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert main(["demo", "--out", str(out), "--size", "128", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "ice-palace-fast" in text and str(out.resolve()) in text
    with Image.open(out) as im:
        assert im.format == "PNG" and im.height == 128 + 2 * 4 and im.width > 3 * 128
        cells = torch.tensor(__import__("numpy").array(im.convert("RGB"))).float() / 255
    photo_cell = cells[4:132, 4:4 + 170]
    result_cell = cells[4:132, -4 - 170:-4]
    # the middle cell is the default model's own style.jpg (768x369 → 266x128), not the sample painting
    from ganstyle.core.models import default_style_model, locate_style_model
    shipped = locate_style_model(default_style_model()).weights_path.parent / "style.jpg"
    with Image.open(shipped) as style:
        expected = torch.tensor(__import__("numpy").array(style.convert("RGB").resize((266, 128)))).float() / 255
    start = 4 + (cells.shape[1] - 8 - 266) // 2   # about centred between the photo and the result
    middle = cells[4:132]
    best = min(float((middle[:, x:x + 266] - expected).abs().mean()) for x in range(start - 40, start + 40))
    assert best < 0.05
    # the result is the photo restyled: clearly different pixels, bluer and greyer like the painting
    assert (photo_cell - result_cell).abs().mean() > 0.1
    blue_shift = result_cell[..., 2].mean() - result_cell[..., 0].mean()
    assert blue_shift > photo_cell[..., 2].mean() - photo_cell[..., 0].mean()


def test_optimize_demo_writes_png(tmp_path, capsys):
    out = tmp_path / "sub" / "demo.png"
    assert main(["demo", "--optimize", "--out", str(out), "--size", "64", "--steps", "4", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "random weights" in text and str(out.resolve()) in text
    with Image.open(out) as im:
        assert im.format == "PNG" and im.height == 64 + 2 * 4   # one row of 64 px cells, 4 px padding
        assert im.width > 3 * 64


def test_demo_sample_files_ship_with_the_package():
    assert (SAMPLES / "photo.jpg").is_file() and (SAMPLES / "painting.jpg").is_file()


def test_random_encoder_is_seeded():
    a, b, c = random_vgg16(0), random_vgg16(0), random_vgg16(1)
    torch.testing.assert_close(a.features[0].weight, b.features[0].weight)
    assert not torch.allclose(a.features[0].weight, c.features[0].weight)
    assert a.identity != c.identity


def test_demo_rejects_bad_size(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "x.png"), "--size", "8"]) == 2
    assert "--size must be at least 64" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_demo_does_not_overwrite_without_the_flag(tmp_path, capsys):
    """Like `ganstyle stylize`: an existing output is refused unless --overwrite."""
    out = tmp_path / "demo.png"
    out.write_bytes(b"mine")
    assert main(["demo", "--out", str(out), "--size", "64", "--device", "cpu"]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"mine"
    assert main(["demo", "--optimize", "--out", str(out), "--size", "64", "--steps", "2", "--device", "cpu"]) == 2
    assert out.read_bytes() == b"mine"
    assert main(["demo", "--out", str(out), "--size", "64", "--device", "cpu", "--overwrite"]) == 0
    with Image.open(out) as im:
        assert im.format == "PNG"


def test_demo_help_is_plain_text(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = capsys.readouterr().out
    assert "``" not in text and ":func:" not in text and ":mod:" not in text
    assert "--optimize" in text and "--overwrite" in text


def test_optimize_demo_estimates_its_duration_and_shows_each_scale(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert main(["demo", "--optimize", "--out", str(out), "--size", "128", "--steps", "4", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    estimate = next(i for i, line in enumerate(lines) if "estimated" in line)
    first_step = next(i for i, line in enumerate(lines) if re.search(r"loss \d", line))
    assert estimate < first_step and re.search(r"estimated \d+ (s|min)", lines[estimate])
    scales = [line for line in lines if line.strip().startswith("scale ")]
    assert any("scale 1/2 (64 px)" in line for line in scales) and any("scale 2/2 (128 px)" in line for line in scales)
    # a scale's loss is compared within that scale only
    assert all("in this scale" in line or "step   1/" in line for line in scales)
