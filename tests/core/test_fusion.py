"""Closed-form fusion (core/fusion.py): WCT and AdaIN give the features the painting's statistics."""
from __future__ import annotations

import pytest
import torch

from ganstyle.core.errors import InputError
from ganstyle.core.features import blend_style_features, compute_style_features, gram_matrix
from ganstyle.core.fusion import Moments, adain, feature_moments, fuse, style_moments, wct


def correlated(seed: int, c: int = 6, n: int = 400, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(c, c, generator=g)
    return (mix @ torch.randn(c, n, generator=g) * scale + torch.randn(c, 1, generator=g)).view(1, c, 20, n // 20)


def test_wct_gives_the_painting_mean_and_covariance():
    photo, painting = correlated(0), correlated(1, scale=3.0)
    out = wct(photo, feature_moments(photo), feature_moments(painting))
    got, want = feature_moments(out), feature_moments(painting)
    torch.testing.assert_close(got.mean, want.mean, atol=1e-4, rtol=0)
    torch.testing.assert_close(got.cov, want.cov, atol=1e-3, rtol=1e-4)


def test_adain_matches_channel_mean_and_std_but_keeps_correlations():
    photo, painting = correlated(0), correlated(1, scale=3.0)
    out = adain(photo, feature_moments(photo), feature_moments(painting))
    got, want = feature_moments(out), feature_moments(painting)
    torch.testing.assert_close(got.mean, want.mean, atol=1e-4, rtol=0)
    torch.testing.assert_close(got.std, want.std, atol=1e-3, rtol=1e-4)
    corr = lambda m: m.cov / torch.outer(m.std, m.std)  # noqa: E731
    torch.testing.assert_close(corr(got), corr(feature_moments(photo)), atol=1e-3, rtol=0)


def test_style_moments_from_style_features_equal_the_features_own(vgg16, painting):
    style = compute_style_features(vgg16, painting, style_size=None, layers=("relu2_1",))
    feats = vgg16(painting, ["relu2_1"])["relu2_1"]
    got = style_moments(style.grams["relu2_1"], style.means["relu2_1"])
    want = feature_moments(feats)
    torch.testing.assert_close(got.mean, want.mean, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.cov, want.cov, atol=1e-4 * float(want.cov.abs().max()), rtol=0)
    assert torch.allclose(gram_matrix(feats)[0], style.grams["relu2_1"])


def test_blended_features_fuse_to_the_mixture_of_both_paintings(vgg16, painting, photo):
    """A blend of two paintings' Style Features is the statistics of both pooled (a mixture)."""
    a = compute_style_features(vgg16, painting, style_size=None, layers=("relu1_1",))
    b = compute_style_features(vgg16, photo, style_size=None, layers=("relu1_1",))
    mix = blend_style_features([a, b], [0.25, 0.75])
    fa, fb = (vgg16(x, ["relu1_1"])["relu1_1"] for x in (painting, photo))
    ma, mb = feature_moments(fa), feature_moments(fb)
    mean = 0.25 * ma.mean + 0.75 * mb.mean
    second = 0.25 * (ma.cov + torch.outer(ma.mean, ma.mean)) + 0.75 * (mb.cov + torch.outer(mb.mean, mb.mean))
    got = style_moments(mix.grams["relu1_1"], mix.means["relu1_1"])
    torch.testing.assert_close(got.mean, mean, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got.cov, second - torch.outer(mean, mean), atol=1e-3, rtol=1e-3)


def test_weighted_moments_are_those_of_the_masked_pixels():
    f = correlated(3)
    mask = torch.zeros(1, 1, *f.shape[-2:])
    mask[..., :, :7] = 1
    got = feature_moments(f, mask)
    want = feature_moments(f[..., :, :7].contiguous())
    torch.testing.assert_close(got.mean, want.mean)
    torch.testing.assert_close(got.cov, want.cov, atol=1e-5, rtol=1e-5)


def test_a_flat_painting_or_photo_gives_finite_features():
    photo = correlated(0)
    flat = torch.full_like(photo, 0.3)
    for content, style in ((photo, flat), (flat, photo)):
        out = wct(content, feature_moments(content), feature_moments(style))
        assert torch.isfinite(out).all()


def test_bad_input_is_named():
    f = correlated(0)
    with pytest.raises(InputError, match="fusion must be one of"):
        fuse(f, feature_moments(f), feature_moments(f), "swap")
    with pytest.raises(InputError, match="3 channels, the features have 6"):
        wct(f, feature_moments(f), Moments(torch.zeros(3), torch.eye(3)))
    with pytest.raises(InputError, match="zero everywhere"):
        feature_moments(f, torch.zeros(1, 1, *f.shape[-2:]))
