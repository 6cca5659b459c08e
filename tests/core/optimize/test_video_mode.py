"""Optimize Stylize's video mode (Ruder et al. 2016): each frame starts from the previous result
moved along the flow and is held to it where the scene is visible in both."""
import pytest
import torch

from ganstyle.core.features import compute_style_features
from ganstyle.core.optimize import OptimizeOptions, StyleTransferCancelled, optimize_stylize, optimize_video

from helpers import panning_clip, panning_warp_error, synthetic_painting

pytestmark = pytest.mark.usefixtures("one_thread")


def clip(frames=3):
    return panning_clip(frames, 48, 64, shift=2, noise=0.03, seed=2)


def test_video_mode_is_steadier_than_frame_by_frame_at_the_same_steps(vgg16):
    style = compute_style_features(vgg16, synthetic_painting(48, 48), style_size=48)
    options = OptimizeOptions(steps=12, long_side=0, start_side=64, preview_every=0, init="noise")
    frames = clip()
    alone = [optimize_stylize(vgg16, f, style, options) for f in frames]
    steady = list(optimize_video(vgg16, frames, style, options, temporal_weight=500))
    assert all(r.shape == (1, 3, 48, 64) for r in steady)
    torch.testing.assert_close(steady[0], alone[0])            # the first frame is a plain run
    assert panning_warp_error(steady) < 0.5 * panning_warp_error(alone)


def test_video_mode_cancels_within_a_frame(vgg16):
    style = compute_style_features(vgg16, synthetic_painting(48, 48), style_size=48)
    options = OptimizeOptions(steps=6, long_side=0, start_side=64, preview_every=0)
    calls = []

    def progress(step, total, losses, preview):
        calls.append(step)
        if len(calls) == 9:          # the second frame's third step
            raise StyleTransferCancelled("cancelled")

    with pytest.raises(StyleTransferCancelled):
        list(optimize_video(vgg16, clip(), style, options, temporal_weight=100, progress=progress))
    assert len(calls) == 9
