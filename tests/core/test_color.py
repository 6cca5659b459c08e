import pytest
import torch

from ganstyle.core.color import (
    apply_color_map,
    apply_color_mode,
    match_palette,
    palette_map,
    preserve_luminance,
    recolor,
    rgb_to_yuv,
    yuv_to_rgb,
)
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


def test_match_palette_blends_each_palette_by_its_share(photo):
    red = (torch.tensor([0.7, 0.2, 0.2]), torch.eye(3) * 1e-3)
    blue = (torch.tensor([0.2, 0.2, 0.7]), torch.eye(3) * 1e-3)
    h, w = photo.shape[-2:]
    shares = torch.zeros(1, 2, h, w)
    shares[:, 0, :, : w // 2] = 1.0                     # left half red, right half blue
    shares[:, 1, :, w // 2:] = 1.0
    out = match_palette(photo, [red, blue], shares=shares)
    left, right = slice(None, w // 2), slice(w // 2, None)
    # each region gets its palette from its own pixels' statistics, as if it were a picture alone
    torch.testing.assert_close(out[..., left], recolor(photo[..., left], *red), atol=1e-4, rtol=0)
    torch.testing.assert_close(out[..., right], recolor(photo[..., right], *blue), atol=1e-4, rtol=0)
    torch.testing.assert_close(match_palette(photo, [red]), recolor(photo, *red), atol=1e-4, rtol=0)
    # maps found on one picture are reused as they are on another
    maps = [palette_map(photo, *red)]
    other = photo.flip(-1) * 0.8
    torch.testing.assert_close(match_palette(other, [red], maps=maps),
                               apply_color_map(other, *maps[0]).clamp(0, 1))
    half = match_palette(photo, [red], amount=0.5)
    torch.testing.assert_close(half, (0.5 * photo + 0.5 * recolor(photo, *red)).clamp(0, 1))
    torch.testing.assert_close(match_palette(photo, [red], amount=0.0), photo)


def test_match_palette_checks_its_inputs(photo):
    red = (torch.tensor([0.7, 0.2, 0.2]), torch.eye(3) * 1e-3)
    with pytest.raises(InputError, match="in \\[0, 1\\]"):
        match_palette(photo, [red], amount=1.5)
    with pytest.raises(InputError, match="2 palettes need their per-pixel shares"):
        match_palette(photo, [red, red])
    with pytest.raises(InputError, match="shares must be"):
        match_palette(photo, [red, red], shares=torch.ones(1, 3, 4, 4))
    h, w = photo.shape[-2:]
    with pytest.raises(InputError, match="shares must be"):
        match_palette(photo.expand(2, -1, -1, -1), [red, red], shares=torch.ones(3, 2, h, w) / 2)
    # other float types in, float32 out; a region absent from a picture changes nothing there
    half = match_palette(photo.half(), [red])
    assert half.dtype == torch.float32
    a, b = palette_map(photo, *red, weights=torch.zeros(photo.shape[0], h, w))
    torch.testing.assert_close(a, torch.eye(3)[None])
    torch.testing.assert_close(b, torch.zeros(1, 3))
    with pytest.raises(InputError, match="at least one palette"):
        match_palette(photo, [])
