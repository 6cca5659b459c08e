"""core.quality metrics on synthetic images."""
from __future__ import annotations

import math

import pytest
import torch

from ganstyle.core import quality as q
from ganstyle.core.errors import InputError
from ganstyle.core.features import compute_style_features

from helpers import synthetic_painting, synthetic_photo


@pytest.fixture
def photo():
    return synthetic_photo(64, 96)


def test_identity_is_perfect(photo):
    assert float(q.tone_correlation(photo, photo)) == pytest.approx(1.0, abs=1e-5)
    assert float(q.contrast_ratio(photo, photo)) == pytest.approx(1.0, abs=1e-5)
    assert float(q.edge_correlation(photo, photo)) == pytest.approx(1.0, abs=1e-5)


def test_inverted_image_has_negative_tone(photo):
    assert float(q.tone_correlation(photo, 1 - photo)) == pytest.approx(-1.0, abs=1e-4)
    assert float(q.contrast_ratio(photo, 1 - photo)) == pytest.approx(1.0, abs=1e-4)
    assert float(q.edge_correlation(photo, 1 - photo)) == pytest.approx(1.0, abs=1e-4)  # same edges


def test_flat_result(photo):
    flat = torch.full_like(photo, 0.4)
    assert float(q.contrast_ratio(photo, flat)) == pytest.approx(0.0, abs=1e-5)
    assert float(q.tone_correlation(photo, flat)) == 0.0
    assert float(q.edge_correlation(photo, flat)) == 0.0
    assert math.isnan(float(q.contrast_ratio(flat, photo)))       # a flat photo has no contrast to keep


def test_contrast_halved_and_tone_kept(photo):
    half = 0.5 + 0.5 * (photo - 0.5)
    assert float(q.contrast_ratio(photo, half)) == pytest.approx(0.5, abs=1e-4)
    assert float(q.tone_correlation(photo, half)) == pytest.approx(1.0, abs=1e-4)


def test_blur_keeps_tone_loses_edges():
    g = torch.Generator().manual_seed(0)
    noisy = torch.rand(1, 3, 64, 64, generator=g)
    blurred = torch.nn.functional.avg_pool2d(noisy, 5, stride=1, padding=2, count_include_pad=False)
    assert float(q.edge_correlation(noisy, blurred)) < 0.5
    assert float(q.tone_correlation(noisy, blurred)) > 0.8


def test_batch_and_shape_checks(photo):
    batch = torch.cat([photo, 1 - photo])
    assert q.tone_correlation(batch, batch).shape == (2,)
    with pytest.raises(InputError, match="same shape"):
        q.tone_correlation(photo, photo[..., :32])
    with pytest.raises(InputError, match=r"\(B, 3, H, W\)"):
        q.edge_correlation(photo[:, :1], photo[:, :1])


def test_encoder_metrics(vgg16, photo):
    style = compute_style_features(vgg16, synthetic_painting(64, 64), style_size=None)
    assert float(q.gram_style_ratio(vgg16, photo, photo, style)) == pytest.approx(1.0, abs=1e-5)
    assert float(q.content_error(vgg16, photo, photo)) == pytest.approx(0.0, abs=1e-6)
    painting = torch.nn.functional.interpolate(synthetic_painting(64, 64), size=photo.shape[-2:])
    assert float(q.gram_style_ratio(vgg16, photo, painting, style)) < 0.5   # the style itself: far closer
    assert float(q.content_error(vgg16, photo, painting)) > 0.1


def test_bench_quality_runs(tmp_path, vgg16_file):
    """bench/bench_quality.py end to end on a tiny model and encoder (no optimisation)."""
    import importlib.util
    import json

    from ganstyle.core.generator import GeneratorConfig, StyleGenerator
    from ganstyle.core.images import save_image

    spec = importlib.util.spec_from_file_location("bench_quality", q.__file__.replace("core/quality.py",
                                                                                      "bench/bench_quality.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    torch.manual_seed(0)
    StyleGenerator(GeneratorConfig(4, 8, 2, 1, 3, 3, "instance", "nearest", "tiny", True)).save_pretrained(
        tmp_path / "model")
    photos = tmp_path / "photos"
    for i in range(2):
        save_image(synthetic_photo(40 + 8 * i, 64), photos / f"p{i}.png")
    save_image(synthetic_painting(48, 48), tmp_path / "style.png")
    rc = bench.main([str(photos), "--style", str(tmp_path / "style.png"), "--model", str(tmp_path / "model"),
                     "--encoder", str(vgg16_file), "--long-side", "64", "--no-optimize", "--device", "cpu",
                     "--goals", "--json", str(tmp_path / "q.json"), "--sheet", str(tmp_path / "s.png"),
                     "--cell", "64", "--crops"])
    assert rc == 0 and (tmp_path / "s.png").is_file()
    report = json.loads((tmp_path / "q.json").read_text())
    assert len(report["rows"]) == 2 and set(bench.METRICS) <= set(report["rows"][0])
    assert [g["metric"] for g in report["goals"][str(tmp_path / "model")]] == ["tone", "contrast", "style", "edges"]


def test_bench_quality_reuses_the_cached_optimize_reference(tmp_path, vgg16_file, monkeypatch):
    """--reference-cache: the Optimize Stylize row is computed once, then read back."""
    import importlib.util
    import json

    import ganstyle.core.optimize as optimize
    from ganstyle.core.images import save_image

    spec = importlib.util.spec_from_file_location("bench_quality", q.__file__.replace("core/quality.py",
                                                                                      "bench/bench_quality.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    save_image(synthetic_photo(32, 40), tmp_path / "photos" / "p0.png")
    save_image(synthetic_painting(48, 48), tmp_path / "style.png")
    real = optimize.optimize_stylize
    calls = []
    monkeypatch.setattr(optimize, "optimize_stylize", lambda *a, **k: calls.append(1) or real(*a, **k))
    argv = [str(tmp_path / "photos"), "--style", str(tmp_path / "style.png"), "--encoder", str(vgg16_file),
            "--long-side", "40", "--device", "cpu", "--reference-cache", str(tmp_path / "cache")]
    reports = []
    for i in range(2):
        assert bench.main([*argv, "--json", str(tmp_path / f"q{i}.json")]) == 0
        reports.append(json.loads((tmp_path / f"q{i}.json").read_text())["rows"][0])
    assert len(calls) == 1 and len(list((tmp_path / "cache").glob("*.png"))) == 1
    assert reports[1]["seconds"] == reports[0]["seconds"]
    for metric in bench.METRICS:   # re-measured from the 8-bit PNG: rounding only
        assert abs(reports[1][metric] - reports[0][metric]) < 0.02 * max(1.0, abs(reports[0][metric]))


def test_bench_quality_pairs_held_out_styles_with_photos_for_an_arbitrary_model(tmp_path, vgg16_file):
    """--styles: style i with photo i mod N; the model gets each style's features, and the sheet a style column."""
    import importlib.util
    import json

    from ganstyle.core.images import save_image
    from ganstyle.core.vgg import load_vgg_encoder_file

    from helpers import tiny_arbitrary

    spec = importlib.util.spec_from_file_location("bench_quality", q.__file__.replace("core/quality.py",
                                                                                      "bench/bench_quality.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    identity = load_vgg_encoder_file(vgg16_file).identity
    tiny_arbitrary(encoder=identity).save_pretrained(tmp_path / "arbitrary")
    for i in range(2):
        save_image(synthetic_photo(40, 64).roll(9 * i, -1), tmp_path / "photos" / f"p{i}.png")
    save_image(synthetic_painting(48, 48, seed=1), tmp_path / "styles" / "one.png")
    for i in range(2):
        save_image(synthetic_painting(48, 48, seed=2 + i), tmp_path / "styles" / "group" / f"{i}.png")
    save_image(synthetic_painting(48, 48, seed=4), tmp_path / "styles" / "three.png")
    rc = bench.main([str(tmp_path / "photos"), "--styles", str(tmp_path / "styles"), "--model",
                     str(tmp_path / "arbitrary"), "--encoder", str(vgg16_file), "--long-side", "64", "--style-size",
                     "48", "--no-optimize", "--device", "cpu", "--goals", "--goal-style", "0.08", "--json",
                     str(tmp_path / "q.json"), "--sheet", str(tmp_path / "s.png"), "--cell", "64"])
    assert rc == 0
    report = json.loads((tmp_path / "q.json").read_text())
    assert [r["photo"] for r in report["rows"]] == ["p0/group", "p1/one", "p0/three"]
    styles = {r["photo"]: r["style"] for r in report["rows"]}
    assert len(set(styles.values())) == 3                      # each pair measured against its own style
    goals = report["goals"][str(tmp_path / "arbitrary")]
    assert [g["target"] for g in goals if g["metric"] == "style"] == [0.08]
    from PIL import Image
    assert Image.open(tmp_path / "s.png").width == 3 * (64 + 6) + 6   # photo | style | model
    assert bench.main([str(tmp_path / "photos"), "--model", str(tmp_path / "arbitrary")]) == 2   # no style given
