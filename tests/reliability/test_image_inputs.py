"""Reliability of image inputs: odd modes, sizes and values through files, IMAGE tensors, the
library API (lists of mixed sizes) and CLI folders."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganstyle.core.engine import TiledEngine
from ganstyle.core.errors import GanstyleError, InputError
from ganstyle.core.generator import StyleGenerator
from ganstyle.core.images import bchw_to_comfy, comfy_to_bchw, load_image, save_image
from ganstyle.core.optimize import OptimizeOptions, plan_scales
from ganstyle.core.stylize import stylize
from ganstyle.core.tiles import tile_spans
from ganstyle.train_cli.__main__ import main as cli_main

from helpers import synthetic_photo, tiny_generator


@pytest.fixture(scope="module")
def generator() -> StyleGenerator:
    return tiny_generator().requires_grad_(False)


def _rgb(h=20, w=24):
    return (synthetic_photo(h, w)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


# ---- files ---------------------------------------------------------------------------------------
def test_grayscale_rgba_palette_16bit_files(tmp_path):
    rgb = _rgb()
    gray = rgb.mean(axis=2).astype(np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 77, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    g16 = (gray.astype(np.uint16) * 257)
    Image.fromarray(g16).save(tmp_path / "gray16.png")
    Image.fromarray(rgb).save(tmp_path / "one.png")

    x = load_image(tmp_path / "gray.png")
    assert x.shape == (1, 3, 20, 24) and torch.equal(x[:, 0], x[:, 1])
    torch.testing.assert_close(x[0, 0], torch.from_numpy(gray).float() / 255)
    x = load_image(tmp_path / "rgba.png")  # alpha dropped (documented), colour kept exactly
    torch.testing.assert_close(x[0].permute(1, 2, 0), torch.from_numpy(rgb).float() / 255)
    assert load_image(tmp_path / "palette.png").shape == (1, 3, 20, 24)
    x16 = load_image(tmp_path / "gray16.png")  # 16-bit: full range, not clipped to 1/257
    torch.testing.assert_close(x16[0, 0], torch.from_numpy(gray).float() / 255, atol=1e-4, rtol=0)


def test_one_pixel_image_file_and_tensor(tmp_path, generator):
    Image.new("RGB", (1, 1), (200, 10, 30)).save(tmp_path / "dot.png")
    x = load_image(tmp_path / "dot.png")
    assert x.shape == (1, 3, 1, 1)
    for size in [(1, 1), (1, 7), (5, 1), (3, 3)]:
        y = stylize(generator, torch.rand(1, 3, *size), tile="auto")
        assert y.shape == (1, 3, *size) and torch.isfinite(y).all()


@pytest.mark.parametrize("content", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 10])
def test_unreadable_image_file(tmp_path, content):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(InputError, match="bad.png"):
        load_image(path)
    with pytest.raises(InputError, match="not found"):
        load_image(tmp_path / "missing.png")


# ---- IMAGE tensors -------------------------------------------------------------------------------
def test_comfy_image_channel_variants():
    base = torch.rand(2, 8, 10, 3)
    assert torch.equal(comfy_to_bchw(base).permute(0, 2, 3, 1), base)
    gray = torch.rand(2, 8, 10, 1)
    out = comfy_to_bchw(gray)
    assert out.shape == (2, 3, 8, 10) and torch.equal(out[:, 2], gray[..., 0])
    rgba = torch.cat([base, torch.zeros(2, 8, 10, 1)], -1)
    assert torch.equal(comfy_to_bchw(rgba), comfy_to_bchw(base))  # alpha dropped, colour untouched
    assert comfy_to_bchw(base[0]).shape == (1, 3, 8, 10)  # unbatched (H, W, C) accepted
    half = base.half()
    assert comfy_to_bchw(half).dtype == torch.float32
    assert comfy_to_bchw(base * 3 - 1).min() >= 0  # out-of-range values clamped, not propagated
    roundtrip = bchw_to_comfy(comfy_to_bchw(base))
    assert roundtrip.shape == base.shape and torch.equal(roundtrip, base)


@pytest.mark.parametrize("bad, needle", [
    (torch.full((1, 8, 8, 3), float("nan")), "NaN"),
    (torch.tensor([[[[0.5, float("inf"), 0.1]]]]), "Inf"),
    (torch.zeros(0, 8, 8, 3), "empty"),
    (torch.zeros(1, 0, 8, 3), "empty"),
    (torch.zeros(1, 8, 8, 2), "channels"),
    (torch.zeros(8, 3), "(B, H, W, C)"),
    (np.zeros((1, 8, 8, 3)), "tensor"),
])
def test_bad_comfy_images(bad, needle):
    with pytest.raises(InputError) as info:
        comfy_to_bchw(bad)
    assert needle.lower() in str(info.value).lower()


@pytest.mark.parametrize("bad", [torch.full((1, 3, 8, 8), float("nan")), torch.zeros(0, 3, 8, 8),
                                 torch.zeros(1, 4, 8, 8), torch.zeros(1, 3, 8, 8, dtype=torch.uint8),
                                 [torch.zeros(1, 3, 8, 8)]])
def test_bad_images_to_stylize(generator, bad):
    with pytest.raises(InputError):
        stylize(generator, bad)


# ---- very large images ---------------------------------------------------------------------------
def test_huge_image_tiles_within_budget(generator):
    """A 20000² image would need ~GBs of activations untiled: the plan tiles it in bounded tiles
    (checked without allocating it), and a real 1200² image runs tiled in a small budget."""
    budget = 64 << 20
    engine = TiledEngine(generator, torch.device("cpu"), torch.float32, False, "auto", 32, budget, None)
    assert engine.plan(20000, 20000) is not None
    plan = engine.plan(20000, 20000)
    assert plan.tile ** 2 * generator.activation_bytes_per_pixel() <= budget * 1.05 or plan.tile == engine.min_tile
    n_tiles = len(tile_spans(20000, plan)) ** 2
    assert n_tiles > 50
    assert engine.plan(64, 64) is None  # small images still run whole

    big = torch.rand(1, 3, 1200, 1200, generator=torch.Generator().manual_seed(0))
    calls = []
    y = stylize(generator, big, max_memory=budget, dtype="fp32", progress=lambda d, t: calls.append((d, t)))
    assert y.shape == big.shape and torch.isfinite(y).all() and 0 <= y.min() and y.max() <= 1
    assert calls[-1][0] == calls[-1][1] > 2  # several tiles (+ the statistics pass)


def test_forced_tiles_are_seamless(generator):
    """With statistics of the whole image, tiled output equals the untiled output."""
    x = torch.rand(1, 3, 200, 180, generator=torch.Generator().manual_seed(1))
    tiled = stylize(generator, x, tile=96, dtype="fp32")
    whole = stylize(generator, x, tile=None, dtype="fp32")
    assert (tiled - whole).abs().max() < 1e-4


def test_optimize_long_side_is_bounded():
    with pytest.raises(GanstyleError, match="long_side"):
        OptimizeOptions(long_side=10**6).checked()
    with pytest.raises(GanstyleError, match="long_side"):
        OptimizeOptions(long_side=-5).checked()
    scales = plan_scales(100, 50, OptimizeOptions(long_side=16384).checked())
    assert max(scales[-1].height, scales[-1].width) == 16384


# ---- mixed sizes: library lists and CLI folders ---------------------------------------------------
def test_list_of_mixed_sizes_through_the_library(generator):
    images = [synthetic_photo(20, 28), synthetic_photo(33, 17), synthetic_photo(1, 9)]
    outs = [stylize(generator, x) for x in images]
    assert [tuple(o.shape) for o in outs] == [tuple(x.shape) for x in images]
    batched = stylize(generator, torch.cat([images[0]] * 3))
    torch.testing.assert_close(batched[1:2], outs[0], atol=1e-5, rtol=0)


def test_cli_folder_of_mixed_sizes_and_modes(tmp_path, generator, capsys):
    model = generator.save_pretrained(tmp_path / "model")
    src = tmp_path / "in"
    src.mkdir()
    save_image(synthetic_photo(20, 28), src / "a.png")
    save_image(synthetic_photo(35, 18), src / "b.jpg")
    Image.fromarray(_rgb(12, 30).mean(axis=2).astype(np.uint8), "L").save(src / "gray.png")
    Image.fromarray(np.dstack([_rgb(9, 9), np.zeros((9, 9), np.uint8)]), "RGBA").save(src / "rgba.png")
    out = tmp_path / "out"
    assert cli_main(["stylize", str(src), "-o", str(out), "--model", str(model), "--device", "cpu"]) == 0
    sizes = {p.name: Image.open(p).size for p in out.iterdir()}
    assert sizes == {"a.png": (28, 20), "b.png": (18, 35), "gray.png": (30, 12), "rgba.png": (9, 9)}
    # a broken file among them: skipped with one warning naming it (as training does), the rest written
    (src / "zz_broken.png").write_bytes(b"nope")
    assert cli_main(["stylize", str(src), "-o", str(tmp_path / "out2"), "--model", str(model),
                     "--device", "cpu"]) == 0
    assert "zz_broken.png" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == sorted(sizes)
