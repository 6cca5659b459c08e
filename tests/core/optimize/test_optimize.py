"""core.optimize: the optimisation loop and its loss (random-weight VGG16 fixture, 32x40 px images, a
handful of evaluations each)."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from ganstyle.core.color import apply_color_mode, rgb_to_yuv
from ganstyle.core.errors import ConfigError, InputError
from ganstyle.core.features import compute_style_features, gram_matrix
from ganstyle.core.optimize import (
    OptimizeOptions,
    StyleObjective,
    StyleTransferCancelled,
    evaluate_losses,
    objective_settings,
    optimize_stylize,
)
from ganstyle.core.vgg import STYLE_LAYERS, load_vgg_encoder_file

from helpers import synthetic_photo

# Single scale, few evaluations: a run takes well under a second on 2 CPU cores.
FAST = OptimizeOptions(steps=15, min_steps=4, long_side=0, start_side=64, mixed_precision="fp32")


@pytest.fixture(scope="module")
def small():
    return synthetic_photo(32, 40)


@pytest.fixture(scope="module")
def style(vgg16):
    from helpers import synthetic_painting
    return compute_style_features(vgg16, synthetic_painting(), style_size=32)


@pytest.fixture(scope="module")
def default_run(vgg16, small, style):
    """One run with FAST settings, shared: (result, losses after each evaluation)."""
    seen = []
    out = optimize_stylize(vgg16, small, style, FAST, progress=lambda s, t, losses, p: seen.append(losses))
    return out, seen


def _gram_distance(encoder, image, style):
    with torch.no_grad():
        feats = encoder(image, STYLE_LAYERS)
    return sum(float(((gram_matrix(feats[n])[0] - style.grams[n]) ** 2).mean() / (style.grams[n] ** 2).mean())
               for n in STYLE_LAYERS)


def test_loss_decreases_and_result_moves_toward_style(vgg16, small, style, default_run):
    out, seen = default_run
    assert out.shape == small.shape and out.min() >= 0 and out.max() <= 1
    assert len(seen) == 15
    assert seen[0]["content"] == pytest.approx(0.0, abs=1e-6)     # init = the content itself
    # A smooth gradient cannot turn into dense stripes in 15 steps, but every term moves the right
    # way (measured: total −26 %, style −39 %, Gram distance −39 %).
    assert seen[-1]["total"] < 0.85 * seen[0]["total"]
    assert seen[-1]["style"] < 0.75 * seen[0]["style"]
    assert (out - small).abs().mean() > 0.03                       # it really changed
    assert _gram_distance(vgg16, out, style) < 0.75 * _gram_distance(vgg16, small, style)


def test_unpreconditioned_lbfgs_also_decreases_the_loss(vgg16, small, style, default_run):
    seen = []
    options = dataclasses.replace(FAST, precondition="none")
    out = optimize_stylize(vgg16, small, style, options, progress=lambda s, t, losses, p: seen.append(losses))
    assert seen[-1]["total"] < 0.85 * seen[0]["total"]
    assert (out - default_run[0]).abs().max() > 1e-3                # a different path


def test_evaluate_losses_matches_progress(vgg16, small, style, default_run):
    out, seen = default_run
    first = evaluate_losses(vgg16, small, small, style, FAST)
    assert first["total"] == pytest.approx(seen[0]["total"], rel=1e-5)
    assert evaluate_losses(vgg16, out, small, style, FAST)["total"] < 0.85 * first["total"]


def test_bf16_keeps_the_result(vgg16, small, style, default_run):
    # Under bf16 autocast (what mixed_precision="auto" picks on CUDA and AMX CPUs) the loss and the
    # gradient stay close to fp32, and the optimisation ends at the same loss.
    image = (small + 0.1 * torch.randn(small.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    results = []
    for dtype in (None, torch.bfloat16):
        objective = StyleObjective(vgg16, small, **objective_settings(style, FAST, dtype))
        x = image.clone().requires_grad_(True)
        results.append((objective.evaluate(x)["total"], x.grad.flatten()))
    (fp32_loss, fp32_grad), (bf16_loss, bf16_grad) = results
    assert bf16_loss == pytest.approx(fp32_loss, rel=5e-3)
    assert float(F.cosine_similarity(fp32_grad, bf16_grad, dim=0)) > 0.97
    out = optimize_stylize(vgg16, small, style, dataclasses.replace(FAST, mixed_precision="bf16"))
    assert (evaluate_losses(vgg16, out, small, style, FAST)["total"]
            == pytest.approx(evaluate_losses(vgg16, default_run[0], small, style, FAST)["total"], rel=0.02))


def test_weights_shift_the_balance(vgg16, small, style):
    few = dataclasses.replace(FAST, steps=8)
    more_style = optimize_stylize(vgg16, small, style, dataclasses.replace(few, style_weight=10.0))
    less_style = optimize_stylize(vgg16, small, style, dataclasses.replace(few, style_weight=0.1))
    assert (evaluate_losses(vgg16, more_style, small, style, FAST)["style"]
            < evaluate_losses(vgg16, less_style, small, style, FAST)["style"])
    assert (more_style - small).abs().mean() > 2 * (less_style - small).abs().mean()


def test_per_layer_weights(vgg16, small, style, default_run):
    only_shallow = optimize_stylize(vgg16, small, style, dataclasses.replace(
        FAST, style_layer_weights={"relu1_1": 1.0, "relu5_1": 0.0}))
    assert (only_shallow - default_run[0]).abs().mean() > 0.01
    with pytest.raises(InputError, match=r"style_layer_weights names layers \['relu9_9'\]"):
        optimize_stylize(vgg16, small, style, dataclasses.replace(FAST, style_layer_weights={"relu9_9": 1.0}))


def test_luminance_keeps_content_chroma(vgg16, small, style, default_run):
    plain = default_run[0]
    kept = optimize_stylize(vgg16, small, style, dataclasses.replace(FAST, color_mode="luminance"))
    uv = lambda img: rgb_to_yuv(img)[:, 1:]  # noqa: E731
    # chroma comes from the content (up to clamping into [0, 1]), luminance from the stylisation
    assert (uv(kept) - uv(small)).abs().mean() < 0.005
    assert (uv(plain) - uv(small)).abs().mean() > 0.02
    torch.testing.assert_close(rgb_to_yuv(kept)[:, :1], rgb_to_yuv(plain)[:, :1], atol=0.03, rtol=0)


def test_histogram_matches_content_colour_stats(vgg16, small, style, default_run):
    out = optimize_stylize(vgg16, small, style, dataclasses.replace(FAST, color_mode="histogram"))
    torch.testing.assert_close(out, apply_color_mode(default_run[0], small, "histogram"))
    yuv_out, yuv_in = rgb_to_yuv(out), rgb_to_yuv(small)
    torch.testing.assert_close(yuv_out.mean((2, 3)), yuv_in.mean((2, 3)), atol=0.02, rtol=0)
    torch.testing.assert_close(yuv_out.std((2, 3)), yuv_in.std((2, 3)), atol=0.02, rtol=0)


def test_multiscale_output_has_requested_size(vgg16, small, style):
    options = dataclasses.replace(FAST, long_side=48, start_side=24, steps=6, min_steps=3)
    steps = []
    out = optimize_stylize(vgg16, small, style, options, progress=lambda s, t, losses, p: steps.append((s, t)))
    assert out.shape == (1, 3, 38, 48)        # 32x40 content, long side 48, aspect kept
    assert steps == [(i, 9) for i in range(1, 10)]    # 6 evaluations at 19x24, then 3 at 38x48


def test_cancellation_raises_and_stops(vgg16, small, style):
    calls = []

    def cancel_at_3(step, total, losses, preview):
        calls.append(step)
        if step == 3:
            raise StyleTransferCancelled("user pressed cancel")

    with pytest.raises(StyleTransferCancelled):
        optimize_stylize(vgg16, small, style, FAST, progress=cancel_at_3)
    assert calls == [1, 2, 3]


def test_returning_true_stops_early_with_full_size_batch(vgg16, small, style):
    calls = []
    batch = torch.cat([small, small.flip(-1)])
    options = dataclasses.replace(FAST, long_side=48, start_side=24, steps=6, min_steps=3)
    out = optimize_stylize(vgg16, batch, style, options, progress=lambda s, *a: calls.append(s) or s == 4)
    assert calls == [1, 2, 3, 4]               # stopped inside the first (coarse) scale of image 0
    assert out.shape == (2, 3, 38, 48)
    torch.testing.assert_close(out[1:], F.interpolate(batch[1:], size=(38, 48), mode="bicubic",
                                                      align_corners=False).clamp(0, 1))


def test_previews(vgg16, small, style):
    previews = []
    optimize_stylize(vgg16, small, style, dataclasses.replace(FAST, steps=4, preview_every=2),
                     progress=lambda s, t, losses, p: previews.append((s, None if p is None else tuple(p.shape))))
    assert previews == [(1, None), (2, (1, 3, 32, 40)), (3, None), (4, (1, 3, 32, 40))]


def test_works_under_inference_mode(vgg16_file, small, painting):
    # ComfyUI loads models and runs nodes inside torch.inference_mode().
    with torch.inference_mode():
        encoder = load_vgg_encoder_file(vgg16_file)
        style = compute_style_features(encoder, painting, style_size=32)
        out = optimize_stylize(encoder, small.clone(), style, dataclasses.replace(FAST, steps=5))
    assert torch.isfinite(out).all() and (out - small).abs().mean() > 0.005
    assert all(p.is_inference() for p in encoder.parameters())   # the caller's encoder is untouched


def test_noise_init_is_seeded_and_batch_is_per_image(vgg16, small, style):
    options = dataclasses.replace(FAST, init="noise", steps=3)
    a = optimize_stylize(vgg16, small, style, options)
    b = optimize_stylize(vgg16, small, style, dataclasses.replace(options, seed=1))
    assert (a - b).abs().mean() > 0.05 and (a - small).abs().mean() > 0.1
    pair = optimize_stylize(vgg16, torch.cat([small, small]), style, options)
    torch.testing.assert_close(pair[:1], a)             # image 0 uses seed, image 1 seed + 1
    torch.testing.assert_close(pair[1:], b)


def test_adam_also_decreases_the_loss(vgg16, small, style):
    seen = []
    optimize_stylize(vgg16, small, style, dataclasses.replace(FAST, optimizer="adam", steps=12),
                     progress=lambda s, t, losses, p: seen.append(losses["total"]))
    assert len(seen) == 12 and seen[-1] < 0.9 * seen[0]


def test_content_colored_init_starts_in_the_style_palette(vgg16, small, style):
    from helpers import synthetic_painting
    painting = F.interpolate(synthetic_painting(), size=(32, 32), mode="bilinear", antialias=True)
    torch.testing.assert_close(style.color_mean, painting[0].flatten(1).mean(1), atol=1e-4, rtol=0)
    first = []
    optimize_stylize(vgg16, small, style, dataclasses.replace(FAST, init="content_colored", steps=1),
                     progress=lambda s, t, losses, p: first.append(losses["content"]))
    assert first[0] > 0.01    # starts away from the content (recoloured), unlike init="content"
    no_colors = dataclasses.replace(style, color_mean=None, color_cov=None)
    with pytest.raises(InputError, match="colour statistics"):
        optimize_stylize(vgg16, small, no_colors, dataclasses.replace(FAST, init="content_colored"))


def test_bad_inputs(vgg16, vgg19_file, small, style):
    with pytest.raises(ConfigError, match="field 'steps' is 0"):
        optimize_stylize(vgg16, small, style, OptimizeOptions(steps=0))
    with pytest.raises(ConfigError, match="field 'init' is 'zeros'"):
        optimize_stylize(vgg16, small, style, OptimizeOptions(init="zeros"))
    with pytest.raises(ConfigError, match="style_layer_weights.*>= 0"):
        optimize_stylize(vgg16, small, style, OptimizeOptions(style_layer_weights={"relu1_1": -1.0}))
    with pytest.raises(InputError, match=r"\(B, 3, H, W\).*\(32, 40\)"):
        optimize_stylize(vgg16, small[0, 0], style, FAST)
    with pytest.raises(InputError, match="NaN"):
        optimize_stylize(vgg16, torch.full_like(small, float("nan")), style, FAST)
    with pytest.raises(InputError, match="too thin"):
        optimize_stylize(vgg16, torch.rand(1, 3, 8, 64), style, FAST)
    other = load_vgg_encoder_file(vgg19_file, deepest="relu3_1")
    with pytest.raises(InputError, match="computed with encoder vgg16:.*vgg19:"):
        optimize_stylize(other, small, style, FAST)
    with pytest.raises(InputError, match="does not compute layers"):
        optimize_stylize(other, small, dataclasses.replace(style, encoder_identity=other.identity), FAST)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_evaluation_equals_eager(vgg16_file, small, painting):
    encoder = load_vgg_encoder_file(vgg16_file, device="cuda")
    style = compute_style_features(encoder, painting, style_size=32)
    content = small.cuda()
    runs = {}
    for graph in (False, True):
        objective = StyleObjective.create(encoder, content, style, OptimizeOptions(cuda_graph=graph))
        runs[graph] = []
        for shift in (0.0, 0.1, 0.2):   # later evaluations replay the graph on new pixels
            x = (content + shift).clamp(0, 1).requires_grad_(True)
            runs[graph].append((objective.evaluate(x), x.grad.clone()))
        assert (objective._graph is not None) == graph
    for (eager, eager_grad), (graphed, graphed_grad) in zip(runs[False], runs[True]):
        for name in eager:
            assert graphed[name] == pytest.approx(eager[name], rel=1e-5)
        torch.testing.assert_close(graphed_grad, eager_grad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_default_cuda_run_decreases_the_loss(vgg16_file, small, painting):
    encoder = load_vgg_encoder_file(vgg16_file, device="cuda")
    style = compute_style_features(encoder, painting, style_size=32)
    seen = []
    options = dataclasses.replace(FAST, mixed_precision="auto")   # bf16 + CUDA graph
    out = optimize_stylize(encoder, small.cuda(), style, options, progress=lambda s, t, losses, p: seen.append(losses))
    assert out.shape == small.shape and out.device.type == "cuda"
    assert seen[-1]["total"] < 0.8 * seen[0]["total"]
