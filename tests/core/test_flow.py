import numpy as np
import pytest
import torch

from ganstyle.core.errors import InputError
from ganstyle.core.flow import FlowEstimator, occlusion_mask, warp_by_flow

from helpers import synthetic_photo


def textured(h=64, w=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    noise = torch.nn.functional.avg_pool2d(torch.rand(1, 3, h, w, generator=g), 3, 1, 1)
    return (0.5 * synthetic_photo(h, w) + 0.5 * noise).clamp(0, 1)


def test_dis_flow_finds_a_known_shift_and_warping_by_it_undoes_it():
    a = textured()
    b = a.roll(3, -1)                            # frame b: everything 3 px to the right
    flow = FlowEstimator("medium")(b, a)        # b → a: each pixel came from 3 px to the left
    inner = flow[8:-8, 8:-8]
    assert inner.shape[-1] == 2 and np.median(inner[..., 0]) == pytest.approx(-3.0, abs=0.3)
    assert abs(np.median(inner[..., 1])) < 0.3
    back = warp_by_flow(a, flow)                 # a moved into b
    assert (back - b)[..., 8:-8, 8:-8].abs().mean() < 0.03 < (a - b)[..., 8:-8, 8:-8].abs().mean()


def test_finer_presets_track_a_sub_pixel_zoom_more_closely():
    """A zoom by 2 % about the centre (motion from 0 to ~1 px, different at every pixel): the
    mean endpoint error falls from fast to medium to fine (the preset optimize_video uses)."""
    h, w = 96, 128
    a = textured(h, w, seed=3)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    true = torch.stack([(xs - w / 2) * -0.02, (ys - h / 2) * -0.02], -1)     # b → a: b's pixel came from here
    b = warp_by_flow(a, true)
    inner = (slice(12, -12), slice(12, -12))
    errors = {preset: float(np.linalg.norm(FlowEstimator(preset)(b, a) - true.numpy(), axis=-1)[inner].mean())
              for preset in ("fast", "medium", "fine")}
    assert errors["fine"] < errors["medium"] < errors["fast"], errors
    assert errors["fine"] < 0.05, errors


def test_warp_by_a_whole_pixel_flow_is_a_shift():
    a = textured(16, 20)
    flow = np.zeros((16, 20, 2), np.float32)
    flow[..., 0] = -2.0
    torch.testing.assert_close(warp_by_flow(a, flow)[..., 2:], a[..., :-2], atol=1e-5, rtol=0)
    with pytest.raises(InputError, match="does not match"):
        warp_by_flow(a, flow[:8])


def test_occlusion_mask_marks_inconsistent_flow_and_pixels_that_leave_the_frame():
    h, w = 12, 16
    forward = np.zeros((h, w, 2), np.float32)
    forward[..., 0] = -2.0                       # consistent 2 px motion...
    backward = -forward
    mask = occlusion_mask(forward, backward)
    assert mask[:, 2:].sum() == 0 and mask[:, :2].sum() == 2 * h    # ...except pixels from outside
    backward[4:8, 8:12] = 5.0                    # a patch the backward flow disagrees with
    assert occlusion_mask(forward, backward)[4:8, 10:14].mean() == 1.0


def test_frames_of_different_sizes_are_refused():
    with pytest.raises(InputError, match="different sizes"):
        FlowEstimator("fast")(textured(16, 16), textured(16, 20))
