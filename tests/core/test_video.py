import pytest
import torch

from ganstyle.core.color import apply_color_map, match_palette, palette_map
from ganstyle.core.config import OptionError
from ganstyle.core.errors import InputError
from ganstyle.core.features import compute_style_features
from ganstyle.core.stylize import StylizeOptions, stylize
from ganstyle.core.video import VideoOptions, VideoStylizer, stylize_frames

from helpers import (
    panning_clip,
    panning_warp_error,
    synthetic_painting,
    synthetic_photo,
    tiny_arbitrary,
    tiny_generator,
)

pytestmark = pytest.mark.usefixtures("one_thread", "auto_is_fp32")


def noisy_clip(frames=6):
    return panning_clip(frames, 48, 80, shift=2, noise=0.04, seed=1)


def test_per_frame_mode_is_plain_stylize():
    model = tiny_generator()
    clip = noisy_clip(3)
    out = list(stylize_frames(model, clip, VideoOptions(temporal=0.0, statistics="frame")))
    for frame, result in zip(clip, out):
        torch.testing.assert_close(result, stylize(model, frame), atol=1e-5, rtol=0)


def test_per_frame_mode_takes_the_paintings_palette_as_stylize_does(vgg16):
    model, clip = tiny_arbitrary(), noisy_clip(2)
    features = compute_style_features(vgg16, synthetic_painting(48, 48, seed=3), style_size=48)
    stylizer = VideoStylizer(model, VideoOptions(temporal=0.0, statistics="frame"), style=features, palette=0.7)
    for frame in clip:
        torch.testing.assert_close(stylizer(frame), stylize(model, frame, style=features, palette=0.7),
                                   atol=1e-5, rtol=0)
    with pytest.raises(InputError, match="palette takes the painting's colours"):
        VideoStylizer(tiny_generator(), palette=0.5)


@pytest.mark.parametrize("options,stylize_options,message", [
    (VideoOptions(temporal=0.99), None, "temporal is 0.99, must be at most 0.98"),
    (VideoOptions(statistics="scene"), None, "statistics is 'scene', expected one of ['clip', 'frame']"),
    (VideoOptions(statistics_frames=0), None, "statistics_frames is 0, must be at least 1"),
    (VideoOptions(flow_preset="slow"), None, "flow_preset is 'slow', expected one of"),
    (None, StylizeOptions(strength=1.5), "strength is 1.5, must be at most 1.0"),
    (None, StylizeOptions(color_mode="sepia"), "color_mode is 'sepia', expected one of"),
])
def test_the_stylizer_checks_both_options_as_stylize_does(options, stylize_options, message):
    with pytest.raises(OptionError) as refused:
        VideoStylizer(tiny_generator(), options, stylize_options)
    assert str(refused.value).startswith(message)
    with pytest.raises(OptionError, match="^strength is 1.5, must be at most 1.0$"):
        VideoStylizer(tiny_generator(), strength=1.5)       # the shortcut goes through the same check


def test_stylize_options_travel_whole_into_the_stylizer():
    model, clip = tiny_generator(), noisy_clip(3)
    options = VideoOptions(temporal=0.5)
    whole = list(stylize_frames(model, clip, options, StylizeOptions(strength=0.7, color_mode="luminance")))
    shortcuts = list(stylize_frames(model, clip, options, strength=0.7, color_mode="luminance"))
    for a, b in zip(whole, shortcuts):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    first = stylize(model, clip[0], strength=0.7, color_mode="luminance")
    torch.testing.assert_close(whole[0], first, atol=1e-5, rtol=0)


def test_clip_mode_keeps_one_colour_map_so_the_palette_does_not_pump(vgg16):
    model = tiny_arbitrary()
    features = compute_style_features(vgg16, synthetic_painting(48, 48, seed=3), style_size=48)
    clip = [synthetic_photo(32, 40)] * 2 + [synthetic_photo(32, 40) * 0.6]       # the scene darkens
    options = VideoOptions(temporal=0.0, statistics="clip", statistics_frames=2)
    plain = list(stylize_frames(model, clip, options, style=features))
    coloured = list(stylize_frames(model, clip, options, style=features, palette=1.0))
    maps = [palette_map(plain[0], features.color_mean, features.color_cov)]   # two equal frames pooled
    for p, c in zip(plain, coloured):
        torch.testing.assert_close(c, apply_color_map(p, *maps[0]).clamp(0, 1), atol=1e-4, rtol=0)
    # the darker frame's result differs, so a per-frame map would have differed too
    assert float((plain[2] - plain[0]).abs().mean()) > 0.01
    per_frame = match_palette(plain[2], [(features.color_mean, features.color_cov)])
    assert float((per_frame - coloured[2]).abs().mean()) > 1e-3


def test_clip_statistics_equal_the_frames_own_for_a_still_clip():
    model = tiny_generator()
    still = [synthetic_photo(32, 40)] * 4
    out = list(stylize_frames(model, still, VideoOptions(temporal=0.0, statistics="clip", statistics_frames=3)))
    for result in out:
        torch.testing.assert_close(result, stylize(model, still[0]), atol=1e-5, rtol=0)


def test_temporal_mode_cuts_the_warping_error():
    model = tiny_generator()
    clip = noisy_clip()
    per_frame = list(stylize_frames(model, clip, VideoOptions(temporal=0.0, statistics="frame")))
    steady = list(stylize_frames(model, clip, VideoOptions(temporal=0.8)))
    assert panning_warp_error(steady, 2) < 0.5 * panning_warp_error(per_frame, 2)
    torch.testing.assert_close(steady[0], per_frame[0], atol=1e-5, rtol=0)   # the first frame is its own


def test_bad_clips_are_clear_errors():
    stylizer = VideoStylizer(tiny_generator(), VideoOptions(temporal=0.5))
    stylizer(synthetic_photo(16, 24))
    with pytest.raises(InputError, match="frame 2 is 20×16, the clip is 24×16"):
        stylizer(synthetic_photo(16, 20))
    with pytest.raises(InputError, match="one at a time"):
        stylizer(torch.rand(2, 3, 16, 24))
    # a 1-frame clip works and is the frame stylised on its own
    (only,) = stylize_frames(tiny_generator(), [synthetic_photo(16, 24)], VideoOptions())
    torch.testing.assert_close(only, stylize(tiny_generator(), synthetic_photo(16, 24)), atol=1e-5, rtol=0)
