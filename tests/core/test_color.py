import pytest
import torch

from ganstyle.core.color import apply_color_mode, preserve_luminance, recolor, rgb_to_yuv, yuv_to_rgb
from ganstyle.core.errors import InputError


def test_yuv_round_trip():
    x = torch.rand(2, 3, 5, 7)
    torch.testing.assert_close(yuv_to_rgb(rgb_to_yuv(x)), x, atol=1e-5, rtol=1e-5)


def test_luminance_keeps_content_chroma_and_stylised_luma():
    g = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, 8, 8, generator=g) * 0.5 + 0.25
    stylized = torch.rand(1, 3, 8, 8, generator=g) * 0.5 + 0.25
    out = preserve_luminance(stylized, content)
    yo, yc, ys = rgb_to_yuv(out), rgb_to_yuv(content), rgb_to_yuv(stylized)
    torch.testing.assert_close(yo[:, 1:], yc[:, 1:], atol=1e-4, rtol=0)
    torch.testing.assert_close(yo[:, :1], ys[:, :1], atol=1e-4, rtol=0)


def test_histogram_matches_channel_stats():
    content = torch.rand(1, 3, 16, 16) * 0.3 + 0.4
    stylized = torch.rand(1, 3, 16, 16) * 0.2
    out = apply_color_mode(stylized, content, "histogram")
    torch.testing.assert_close(rgb_to_yuv(out).mean((2, 3)), rgb_to_yuv(content).mean((2, 3)), atol=0.02, rtol=0)


def test_none_and_bad_mode():
    x = torch.rand(1, 3, 4, 4)
    assert apply_color_mode(x, x, "none") is x
    with pytest.raises(InputError, match="sepia"):
        apply_color_mode(x, x, "sepia")


def test_recolor_gives_the_palette(painting, photo):
    rgb = painting[0].flatten(1)
    mean, cov = rgb.mean(1), torch.cov(rgb, correction=0)
    out = recolor(photo, mean, cov * 0.25)     # a narrower palette, so nothing gets clamped
    flat = out[0].flatten(1)
    torch.testing.assert_close(flat.mean(1), mean, atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(flat, correction=0), cov * 0.25, atol=1e-4, rtol=0)
