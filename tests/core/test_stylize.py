import re
import threading

import pytest
import torch

from ganstyle.core import device as device_module
from ganstyle.core.color import apply_color_mode
from ganstyle.core.device import AUTO_FP16_PIXELS, resolve_dtype
from ganstyle.core.errors import InputError
from ganstyle.core.generator import NormStatistics, StyleGenerator
from ganstyle.core.model_copies import prepare_model, release_device_copies
from ganstyle.core.stylize import StylizeOptions, stylize
from ganstyle.core.tiles import TilePlan, tile_spans

from helpers import tiny_config

# Small versions of the preset families: full-resolution head/tail (johnson), pixel-unshuffle in and
# upsampled full-resolution output head (fast), and the older fast models' pixel-shuffle output head.
JOHNSON_LIKE = tiny_config(first_kernel=5, last_kernel=5, pixel_shuffle=False, preset="tiny-johnson")
FAST_LIKE = tiny_config(preset="tiny-fast")
SHUFFLE_LIKE = tiny_config(preset="tiny-shuffle", output_head="pixel_shuffle")


# "auto" precision is fp32 here (bf16 on CPUs with AMX: test_precision_choice_and_bf16)
pytestmark = pytest.mark.usefixtures("one_thread", "auto_is_fp32")


def _model(config, seed=0):
    torch.manual_seed(seed)
    g = StyleGenerator(config).eval().requires_grad_(False)
    with torch.no_grad():  # non-trivial norm affine parameters, so frozen statistics matter
        for m in g.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return g


def _images(b=1, h=72, w=100, seed=0):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _record_forward_sizes(model):
    sizes = []
    model.register_forward_pre_hook(lambda m, args: sizes.append(tuple(args[0].shape)))
    return sizes


@pytest.mark.parametrize("config", [JOHNSON_LIKE, FAST_LIKE, SHUFFLE_LIKE],
                         ids=["johnson-like", "fast-like", "shuffle-like"])
def test_tiled_equals_whole_image(config):
    g = _model(config)
    x = _images(h=150, w=170)
    whole = stylize(g, x, tile=None)
    sizes = _record_forward_sizes(g)
    tiled = stylize(g, x, tile=96, overlap=8)
    assert len(sizes) > 4  # statistics pass + several tiles really ran
    assert max(max(s[-2:]) for s in sizes[1:]) < 150  # tiles, not the whole image
    torch.testing.assert_close(tiled, whole, atol=2e-5, rtol=0)


def test_naive_tiles_would_differ():
    """The reason for the statistics pass: the same tiles with per-tile statistics show seams."""
    g = _model(JOHNSON_LIKE)
    x = _images(h=96, w=96)
    whole = stylize(g, x, tile=None)
    with torch.inference_mode():
        left = g(x[..., :, :48])
    assert (left - whole[..., :, :48]).abs().max() > 1e-2


def test_tile_spans_cover_and_align():
    plan = TilePlan(tile=100, halo=20, overlap=8, align=4)
    for length in (1, 99, 100, 101, 333, 1000):
        spans = tile_spans(length, plan)
        assert spans[0][0] == 0 and spans[-1][1] == length
        for (_, e0, i0, _), (s1, _, _, _) in zip(spans, spans[1:]):
            assert s1 % 4 == 0 and i0 % 4 == 0
            assert e0 - s1 >= plan.overlap - 4  # consecutive outputs overlap
        for s, e, i, j in spans:
            assert j - i <= plan.tile + plan.align and i <= s and e <= j
            assert (s - i == plan.halo or i == 0) and (j - e == plan.halo or j == length)


def test_strength_and_color_mode():
    g = _model(FAST_LIKE)
    x = _images(h=40, w=48)
    assert torch.equal(stylize(g, x, strength=0.0), x)
    full = stylize(g, x, strength=1.0)
    torch.testing.assert_close(stylize(g, x, StylizeOptions(strength=0.25)), 0.25 * full + 0.75 * x, atol=1e-6, rtol=0)
    lum = stylize(g, x, StylizeOptions(color_mode="luminance"))
    torch.testing.assert_close(lum, apply_color_mode(full, x, "luminance").clamp(0, 1), atol=1e-6, rtol=0)
    assert (lum - full).abs().mean() > 1e-3


def test_batch_equals_single_images():
    g = _model(FAST_LIKE)
    x = _images(b=3, h=33, w=47)
    batch = stylize(g, x)
    singles = torch.cat([stylize(g, x[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, singles, atol=1e-5, rtol=0)
    assert batch.shape == x.shape and batch.dtype == torch.float32


def test_memory_budget_batches_and_thumbnail_statistics():
    g = _model(FAST_LIKE)
    bpp = g.activation_bytes_per_pixel(torch.float32)
    sizes = _record_forward_sizes(g)
    stylize(g, _images(b=4, h=32, w=32), max_memory=bpp * 32 * 32 * 2)
    assert [s[0] for s in sizes] == [2, 2]  # two images per forward pass
    sizes.clear()
    budget_px = 120 * 120
    out = stylize(g, _images(h=300, w=260), max_memory=bpp * budget_px, tile_statistics="thumbnail")
    assert out.shape == (1, 3, 300, 260)
    assert all(s[-1] * s[-2] <= budget_px for s in sizes)
    assert sizes[0][-2] < 300  # statistics from a downscaled copy: the whole image does not fit


@pytest.mark.parametrize("config", [FAST_LIKE, JOHNSON_LIKE, SHUFFLE_LIKE], ids=["fast", "johnson", "shuffle"])
def test_images_over_the_budget_get_exact_statistics(config):
    """An image several times over the memory budget: norm statistics gathered over the tiles make
    the result equal the untiled one (the thumbnail shortcut does not), within the budget."""
    g = _model(config)
    x = _images(h=300, w=260)
    bpp = g.activation_bytes_per_pixel(torch.float32)
    budget_px = 120 * 120
    whole = stylize(g, x, tile=None, dtype="fp32")
    sizes = _record_forward_sizes(g)
    calls = []
    exact = stylize(g, x, max_memory=bpp * budget_px, dtype="fp32", progress=lambda d, t: calls.append((d, t)))
    assert all(s[-1] * s[-2] <= budget_px for s in sizes)
    torch.testing.assert_close(exact, whole, atol=1e-5, rtol=0)
    thumbnail = stylize(g, x, max_memory=bpp * budget_px, dtype="fp32", tile_statistics="thumbnail")
    assert (thumbnail - whole).abs().mean() > 100 * (exact - whole).abs().mean()
    norms = sum(isinstance(m, torch.nn.InstanceNorm2d) for m in g.modules())
    tiles = len(calls) // (norms + 1)
    assert calls[-1] == (len(calls), len(calls)) and len(calls) == tiles * (norms + 1) and tiles > 1
    with pytest.raises(InputError, match="tile_statistics"):
        stylize(g, x, tile_statistics="approximate")


def test_out_of_memory_halves_the_tile(monkeypatch):
    g = _model(JOHNSON_LIKE)
    x = _images(h=200, w=200)
    limit = 120 * 120
    real_forward = StyleGenerator.forward
    ooms = []

    def forward(self, images):
        if images.shape[-1] * images.shape[-2] > limit:
            ooms.append(tuple(images.shape))
            raise torch.OutOfMemoryError("fake CUDA out of memory")
        return real_forward(self, images)

    monkeypatch.setattr(StyleGenerator, "forward", forward)
    bpp = g.activation_bytes_per_pixel(torch.float32)
    out = stylize(g, x, max_memory=bpp * 200 * 200)
    assert ooms and ooms[0][-2:] == (200, 200)
    # the retry ran with a quarter of the pixels: same result as asking for that budget directly
    monkeypatch.setattr(StyleGenerator, "forward", real_forward)
    torch.testing.assert_close(out, stylize(g, x, max_memory=bpp * 200 * 200 // 4), atol=1e-6, rtol=0)

    monkeypatch.setattr(StyleGenerator, "forward", forward)
    with pytest.raises(torch.OutOfMemoryError, match="tiling off"):
        stylize(g, x, tile=None)


def test_caller_model_untouched_and_dtype_copy():
    g = _model(FAST_LIKE)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    x = _images(h=24, w=24)
    out = stylize(g, x, dtype="bf16", channels_last=True)
    assert out.dtype == torch.float32 and out.device == x.device
    torch.testing.assert_close(out, stylize(g, x), atol=3e-2, rtol=0)
    for k, v in g.state_dict().items():
        assert v.dtype == torch.float32 and torch.equal(v, before[k])
    assert prepare_model(g, torch.device("cpu"), torch.float32) is g
    half = prepare_model(g, torch.device("cpu"), torch.bfloat16)
    assert half is prepare_model(g, torch.device("cpu"), torch.bfloat16)  # conversion remembered
    with torch.no_grad():
        g.head[1].bias.add_(1.0)  # weights changed in place (a training step): a fresh copy
    fresh = prepare_model(g, torch.device("cpu"), torch.bfloat16)
    assert fresh is not half and torch.allclose(fresh.head[1].bias.float(), g.head[1].bias, atol=1e-2)
    # two copies: bf16 NHWC (the stylize call above) and bf16 NCHW
    assert release_device_copies(g) == 2 and prepare_model(g, torch.device("cpu"), torch.bfloat16) is not fresh
    g.train()
    assert prepare_model(g, torch.device("cpu"), torch.float32) is not g and g.training


def test_concurrent_stylisations_share_one_model():
    g = _model(JOHNSON_LIKE)
    inputs = [_images(h=120, w=130, seed=s) for s in range(4)]
    expected = [stylize(g, x, tile=None) for x in inputs]
    results, errors = [None] * 4, []

    def work(i):
        try:
            results[i] = stylize(g, inputs[i], tile=80 if i % 2 else None, overlap=8)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r, e in zip(results, expected):
        torch.testing.assert_close(r, e, atol=2e-5, rtol=0)


def test_progress_and_cancel():
    g = _model(FAST_LIKE)
    calls = []
    stylize(g, _images(h=160, w=160), tile=64, overlap=4, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1][0] == calls[-1][1] == len(calls) > 2

    def cancel(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stylize(g, _images(h=120, w=120), tile=64, progress=cancel)


@pytest.mark.parametrize("kwargs,pattern", [
    ({"images": torch.rand(3, 8, 8)}, r"shaped \(B, 3, H, W\), got \(3, 8, 8\)"),
    ({"images": torch.rand(1, 4, 8, 8)}, r"got \(1, 4, 8, 8\)"),
    ({"images": torch.full((1, 3, 8, 8), float("nan"))}, "NaN"),
    ({"images": torch.zeros(0, 3, 8, 8)}, "empty"),
    ({"strength": 1.5}, r"^strength is 1.5, must be at most 1.0$"),
    ({"color_mode": "sepia"}, r"^color_mode is 'sepia', expected one of \['none', 'luminance', 'histogram'\]$"),
    ({"tile": -5}, "tile must be"),
    ({"dtype": "fp8"}, "dtype 'fp8'"),
    ({"overlap": -1}, "^overlap is -1, must be at least 0$"),
])
def test_bad_inputs(kwargs, pattern):
    g = _model(FAST_LIKE)
    args = {"images": _images(h=16, w=16), **kwargs}
    with pytest.raises(InputError, match=pattern):
        stylize(g, **args)
    with pytest.raises(InputError, match="expected a style model"):
        stylize(torch.nn.Conv2d(3, 3, 1), _images(h=8, w=8))


def test_options_travel_whole_and_the_keywords_are_shortcuts_for_their_fields():
    """stylize(options) and stylize(field=…) are the same settings; options.tile_size and
    options.precision reach the engine unless tile=/dtype= override them."""
    g = _model(FAST_LIKE)
    x = _images(h=120, w=100)
    options = StylizeOptions(strength=0.6, color_mode="luminance", overlap=8, precision="fp32")
    torch.testing.assert_close(stylize(g, x, options),
                               stylize(g, x, strength=0.6, color_mode="luminance", overlap=8, dtype="fp32"),
                               atol=0, rtol=0)
    # a shortcut replaces its field of the options given
    torch.testing.assert_close(stylize(g, x, options, strength=1.0),
                               stylize(g, x, StylizeOptions(color_mode="luminance", overlap=8, precision="fp32")),
                               atol=0, rtol=0)
    ticks = {}
    for name, kwargs in {"options tiles": dict(options=StylizeOptions(tile_size=64)),
                         "tile= tiles": dict(tile=64), "tile=None wins": dict(options=StylizeOptions(tile_size=64),
                                                                              tile=None)}.items():
        calls = []
        stylize(g, x, progress=lambda d, t, calls=calls: calls.append(t), **kwargs)
        ticks[name] = calls[-1]
    assert ticks["options tiles"] == ticks["tile= tiles"] > 1 and ticks["tile=None wins"] == 1


@pytest.mark.parametrize("field,value,message", [
    ("strength", -0.5, "strength is -0.5, must be at least 0.0"),
    ("strength", "1", "strength is '1' (str), expected float"),
    ("color_mode", "sepia", "color_mode is 'sepia', expected one of ['none', 'luminance', 'histogram']"),
    ("tile_size", 20000, "tile_size is 20000, must be at most 16384"),
    ("precision", "fp8", "precision is 'fp8', expected one of"),
    ("tile_statistics", "approximate", "tile_statistics is 'approximate', expected one of ['exact', 'thumbnail']"),
    ("overlap", 5000, "overlap is 5000, must be at most 4096"),
    ("palette", 1.5, "palette is 1.5, must be at most 1.0"),
])
def test_checked_refuses_every_field_outside_its_declaration(field, value, message):
    from ganstyle.core.config import OptionError

    with pytest.raises(OptionError) as refused:
        StylizeOptions(**{field: value}).checked()
    assert str(refused.value).startswith(message) and refused.value.keys == [field]
    assert str(refused.value.renamed({field: "--x"})).startswith("--x " + message.split(" ", 1)[1])
    with pytest.raises(OptionError, match="^" + re.escape(message)):
        stylize(_model(FAST_LIKE), _images(h=8, w=8), StylizeOptions(**{field: value}))
    assert StylizeOptions().checked() == StylizeOptions()


def test_norm_statistics_replay():
    g = _model(JOHNSON_LIKE)
    x, other = _images(h=40, w=40), _images(h=40, w=40, seed=5)
    stats = NormStatistics()
    with torch.inference_mode():
        with stats.record():
            recorded = g(x)
        assert len(stats) == sum(isinstance(m, torch.nn.InstanceNorm2d) for m in g.modules())
        torch.testing.assert_close(recorded, g(x), atol=1e-5, rtol=0)
        with stats.frozen():
            replayed_other = g(other)  # other image, x's statistics
        assert (replayed_other - g(other)).abs().max() > 1e-3


def test_precision_choice_and_bf16(monkeypatch):
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert resolve_dtype("auto", cuda, 1024 * 1024) == torch.float32        # small passes: TF32
    assert resolve_dtype("auto", cuda, AUTO_FP16_PIXELS + 1) == torch.float16
    assert resolve_dtype(None, cpu) == torch.float32 and resolve_dtype("auto", cpu, 10**9) == torch.float32
    assert resolve_dtype("bf16", cpu) == torch.bfloat16 and resolve_dtype(torch.float16, cuda) == torch.float16
    monkeypatch.setattr(device_module, "cpu_has_fast_bf16", lambda: True)  # an AMX CPU
    assert resolve_dtype("auto", cpu) == torch.bfloat16 and resolve_dtype("fp32", cpu) == torch.float32
    assert resolve_dtype("auto", torch.device("mps")) == torch.float32
    g = _model(FAST_LIKE)
    x = _images(h=150, w=150)
    whole = stylize(g, x, dtype="bf16")  # bf16 inside, float32 out, close to the fp32 result
    assert whole.dtype == torch.float32
    torch.testing.assert_close(whole, stylize(g, x), atol=3e-2, rtol=0)
    torch.testing.assert_close(stylize(g, x, tile=64, dtype="bf16"), whole, atol=3e-2, rtol=0)
