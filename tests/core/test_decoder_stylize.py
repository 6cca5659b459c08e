"""Stylising with the encoder–decoder kind through core.stylize: masks, blends, strength, palette,
tiles, precision and bad input."""
from __future__ import annotations

import pytest
import torch

from ganstyle.core.decoder_stylize import fuse_regions, moments_from_sums, moments_sums
from ganstyle.core.errors import InputError
from ganstyle.core.features import blend_style_features, compute_style_features
from ganstyle.core.fusion import feature_moments, style_moments
from ganstyle.core.stylize import stylize

from helpers import synthetic_painting, synthetic_photo, tiny_encoder_decoder

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(vgg16_file):
    from ganstyle.core.vgg import load_vgg_encoder_file

    encoder = load_vgg_encoder_file(vgg16_file, deepest="relu5_1")
    model = tiny_encoder_decoder(encoder)
    warm = compute_style_features(encoder, synthetic_painting(64, 64, seed=1), style_size=64)
    cool = compute_style_features(encoder, synthetic_painting(64, 64, seed=2).flip(1) * 0.6, style_size=64)
    return encoder, model, warm, cool


def test_one_pass_gives_a_picture_of_the_input_size(setup):
    _, model, warm, _ = setup
    photo = synthetic_photo(50, 70)
    out = stylize(model, photo, style=warm)
    assert out.shape == photo.shape and out.dtype == torch.float32
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    assert float((out - photo).abs().mean()) > 0.01


def test_strength_is_a_feature_space_trade_off(setup):
    _, model, warm, _ = setup
    photo = synthetic_photo(48, 64)
    assert torch.equal(stylize(model, photo, style=warm, strength=0.0), photo)
    full, half = (stylize(model, photo, style=warm, strength=s) for s in (1.0, 0.5))
    assert float((half - full).abs().mean()) > 1e-3
    # the half-strength features are the average of the photo's and the fused ones (level by level)
    feats = model.encoder(photo, ["relu2_1"])["relu2_1"]
    content = [moments_from_sums(s) for s in moments_sums(feats, None)]
    styles = [style_moments(warm.grams["relu2_1"], warm.means["relu2_1"])]
    fused = fuse_regions(feats, content, styles, None, "wct", 1.0)
    torch.testing.assert_close(fuse_regions(feats, content, styles, None, "wct", 0.5), (feats + fused) / 2)


def test_each_masked_region_takes_its_own_paintings_statistics(setup):
    _, model, warm, cool = setup
    feats = model.encoder(synthetic_photo(48, 64), ["relu2_1"])["relu2_1"]
    shares = torch.zeros(1, 2, *feats.shape[-2:])
    shares[:, 0, :, :16] = 1
    shares[:, 1, :, 16:] = 1
    content = [moments_from_sums(s) for s in moments_sums(feats, shares)]
    styles = [style_moments(s.grams["relu2_1"], s.means["relu2_1"]) for s in (warm, cool)]
    fused = fuse_regions(feats, content, styles, shares, "wct", 1.0)
    for region, painting in ((fused[..., :16], styles[0]), (fused[..., 16:], styles[1])):
        got = feature_moments(region.contiguous())
        torch.testing.assert_close(got.mean, painting.mean, atol=1e-3, rtol=1e-3)
    # and the pictures: the left half follows the first painting, the right the second
    photo = synthetic_photo(48, 64)
    mask = torch.zeros(48, 64)
    mask[:, :32] = 1
    masked = stylize(model, photo, style=cool, masks=[(mask, warm)])
    only_warm, only_cool = stylize(model, photo, style=warm), stylize(model, photo, style=cool)
    left, right = (slice(None), slice(4, 24)), (slice(None), slice(40, 60))
    d = lambda a, b, part: float((a[..., part[0], part[1]] - b[..., part[0], part[1]]).abs().mean())  # noqa: E731
    assert d(masked, only_warm, left) < d(masked, only_cool, left)
    assert d(masked, only_cool, right) < d(masked, only_warm, right)


def test_a_blend_of_two_paintings_lies_between_them(setup):
    _, model, warm, cool = setup
    photo = synthetic_photo(48, 64)
    a, b = stylize(model, photo, style=warm), stylize(model, photo, style=cool)
    mix = stylize(model, photo, style=blend_style_features([warm, cool], [0.5, 0.5]))
    assert float((mix - a).abs().mean()) < float((b - a).abs().mean())
    assert float((mix - b).abs().mean()) < float((b - a).abs().mean())


def test_palette_moves_the_colours_to_the_paintings(setup):
    _, model, warm, _ = setup
    photo = synthetic_photo(48, 64)
    plain, matched = stylize(model, photo, style=warm), stylize(model, photo, style=warm, palette=1.0)
    target = warm.color_mean
    assert float((matched.mean((0, 2, 3)) - target).abs().max()) < 0.02
    assert float((plain.mean((0, 2, 3)) - target).abs().max()) > 0.02


@pytest.mark.parametrize("masked", [False, True])
def test_tiles_equal_the_whole_picture(setup, masked):
    _, model, warm, cool = setup
    photo = synthetic_photo(150, 170)
    mask = torch.zeros(150, 170)
    mask[40:120, 30:100] = 1
    masks = [(mask, cool)] if masked else []
    whole = stylize(model, photo, style=warm, masks=masks, tile=None)
    tiled = stylize(model, photo, style=warm, masks=masks, tile=64)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


def test_odd_sizes_and_low_precision(setup):
    _, model, warm, _ = setup
    photo = synthetic_photo(37, 53)
    full = stylize(model, photo, style=warm)
    assert full.shape == photo.shape
    low = stylize(model, photo, style=warm, dtype="bf16")
    assert low.dtype == torch.float32 and float((low - full).abs().mean()) < 0.05


def test_bad_input_gets_one_line_errors(setup, vgg19_file):
    from ganstyle.core.vgg import load_vgg_encoder_file

    encoder, model, warm, _ = setup
    other = compute_style_features(load_vgg_encoder_file(vgg19_file), synthetic_painting(), style_size=48)
    photo = synthetic_photo(48, 64)
    with pytest.raises(InputError, match="measured with encoder vgg19:"):
        stylize(model, photo, style=other)
    with pytest.raises(InputError, match="NaN"):
        stylize(model, photo * float("nan"), style=warm)
    with pytest.raises(InputError, match="needs a painting's style features"):
        stylize(model, photo)
    with pytest.raises(InputError, match="not 'ink'"):
        stylize(model, photo, style="ink")
    flat = compute_style_features(encoder, torch.full((1, 3, 40, 40), 0.5), style_size=40)
    grey = stylize(model, photo, style=flat)
    assert torch.isfinite(grey).all()


def test_video_clip_statistics_and_temporal_mode(setup):
    """A clip: per-frame mode is plain stylize; clip statistics freeze the photo's feature moments
    (a still clip gives every frame the first frame's result); the temporal mode at least halves
    E_warp (bench/bench_video.py measures the trained model on a real clip)."""
    from ganstyle.core.video import VideoOptions, stylize_frames

    from helpers import panning_clip, panning_warp_error

    _, model, warm, _ = setup
    clip = panning_clip(6, 48, 64)
    per_frame = list(stylize_frames(model, clip, VideoOptions(temporal=0.0, statistics="frame"), style=warm))
    torch.testing.assert_close(per_frame[2], stylize(model, clip[2], style=warm))
    still = list(stylize_frames(model, [clip[0]] * 3, VideoOptions(temporal=0.0, statistics_frames=1), style=warm))
    torch.testing.assert_close(still[2], still[0])
    darker = list(stylize_frames(model, [clip[0], clip[0] * 0.5], VideoOptions(temporal=0.0, statistics_frames=1),
                                 style=warm))
    own = stylize(model, clip[0] * 0.5, style=warm)
    assert float((darker[1] - own).abs().mean()) > 1e-3        # frozen moments, not the frame's own
    steady = list(stylize_frames(model, clip, VideoOptions(temporal=0.8), style=warm, strength=0.9))
    assert panning_warp_error(steady) < 0.5 * panning_warp_error(per_frame)


def test_a_one_pixel_painting_is_refused(setup):
    encoder, _, _, _ = setup
    with pytest.raises(InputError, match="1×1 pixels: too small"):
        compute_style_features(encoder, torch.rand(1, 3, 1, 1))
