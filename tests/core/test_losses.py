import pytest
import torch

from ganstyle.core.errors import InputError
from ganstyle.core.features import gram_matrix
from ganstyle.core.losses import (
    AdversarialLoss,
    adversarial_loss,
    content_loss,
    gram_style_loss,
    mean_std_style_loss,
    total_variation,
)


def test_content_loss_values_and_shape_check():
    assert float(content_loss(torch.full((1, 2, 2, 2), 3.0), torch.ones(1, 2, 2, 2))) == 4.0
    with pytest.raises(InputError, match=r"\(1, 2, 2, 2\).*\(1, 2, 3, 3\)"):
        content_loss(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 3, 3))


def test_gram_style_loss_zero_at_target_and_layer_weights():
    g = torch.Generator().manual_seed(0)
    f = {"a": torch.rand(2, 4, 5, 5, generator=g), "b": torch.rand(2, 8, 3, 3, generator=g)}
    targets = {k: gram_matrix(v)[0] for k, v in f.items()}
    per = gram_style_loss(f, targets, reduction="none")
    assert per.shape == (2,) and float(per[0]) == pytest.approx(0.0, abs=1e-12) and float(per[1]) > 0
    only_b = gram_style_loss(f, targets, {"b": 2.0}, reduction="none")
    expected = 2.0 * ((gram_matrix(f["b"])[1] - targets["b"]) ** 2).mean()
    assert float(only_b[1]) == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(InputError, match="layer 'c'"):
        gram_style_loss(f, {"c": torch.zeros(4, 4)})


def test_mean_std_style_loss_zero_when_equal():
    f = {"x": torch.rand(1, 3, 4, 4)}
    m, s = f["x"].flatten(2).mean(2)[0], (f["x"].flatten(2).var(2, unbiased=False)[0] + 1e-5).sqrt()
    assert float(mean_std_style_loss(f, {"x": m}, {"x": s})) == pytest.approx(0.0, abs=1e-10)


def test_total_variation_known_value():
    img = torch.zeros(1, 1, 2, 2)
    img[..., 0, 1] = 1.0  # one bright pixel: 1 vertical + 1 horizontal difference
    assert float(total_variation(img)) == pytest.approx(1 / 2 + 1 / 2)
    with pytest.raises(InputError):
        total_variation(torch.zeros(3, 3))


@pytest.mark.parametrize("mode", ["lsgan", "hinge", "nsgan"])
def test_adversarial_losses_prefer_correct_answers(mode):
    good_real, bad_real = torch.full((2, 1, 3, 3), 1.0), torch.full((2, 1, 3, 3), 0.0)
    assert adversarial_loss(good_real, True, mode) < adversarial_loss(bad_real, True, mode)
    assert adversarial_loss(bad_real, False, mode) < adversarial_loss(good_real, False, mode)
    gen = AdversarialLoss(mode)
    assert gen(good_real, True, for_discriminator=False) < gen(bad_real, True, for_discriminator=False)
    with pytest.raises(ValueError, match="wgan"):
        AdversarialLoss("wgan")


def test_small_warps_are_small_reproducible_and_the_consistency_loss_sees_a_mismatch():
    from ganstyle.core.losses import random_small_warps, warp, warp_consistency_loss

    a = random_small_warps(4, generator=torch.Generator().manual_seed(3))
    b = random_small_warps(4, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    assert (a - torch.eye(2, 3)).abs().max() < 0.05          # a couple of degrees, a few percent
    image = torch.linspace(0, 1, 32).expand(1, 3, 32, 32).contiguous()
    moved = warp(image, a[:1])
    assert 1e-4 < (moved - image).abs().mean() < 0.05
    # a "generator" that commutes with the warp (the identity) has zero loss; one that does not, more
    assert float(warp_consistency_loss(moved, image, a[:1])) < 1e-10
    assert float(warp_consistency_loss(image, image, a[:1])) > 1e-6
