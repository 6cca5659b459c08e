import pytest
import torch

from ganstyle.core.errors import InputError
from ganstyle.core.features import compute_style_features, gram_matrix, mean_std, resize_long_side
from ganstyle.core.vgg import STYLE_LAYERS


def test_gram_known_values():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)   # one channel
    assert float(gram_matrix(f)) == pytest.approx((1 + 4 + 9 + 16) / 4)
    two = torch.stack([torch.ones(2, 2), -torch.ones(2, 2)]).unsqueeze(0)  # (1, 2, 2, 2)
    torch.testing.assert_close(gram_matrix(two)[0], torch.tensor([[0.5, -0.5], [-0.5, 0.5]]))


def test_gram_does_not_grow_with_image_size():
    tile = torch.rand(1, 8, 6, 6, generator=torch.Generator().manual_seed(0))
    big = tile.repeat(1, 1, 4, 4)  # same texture, 16x the pixels
    torch.testing.assert_close(gram_matrix(big), gram_matrix(tile))


def test_mean_std_known_values():
    f = torch.tensor([0.0, 2.0, 4.0, 6.0]).view(1, 1, 2, 2)
    m, s = mean_std(f, eps=0)
    assert float(m) == 3.0 and float(s) == pytest.approx(5 ** 0.5)


def test_bad_shapes():
    with pytest.raises(InputError, match=r"\(B, C, H, W\).*\(3, 4\)"):
        gram_matrix(torch.zeros(3, 4))


def test_style_features_single_and_blend(vgg16, photo, painting):
    a = compute_style_features(vgg16, painting, style_size=32)
    b = compute_style_features(vgg16, photo, style_size=32)
    assert a.layers == STYLE_LAYERS and a.encoder_identity == vgg16.identity and a.style_size == 32
    assert a.grams["relu1_1"].shape == (64, 64) and a.means["relu5_1"].shape == (512,)
    mix = compute_style_features(vgg16, [painting, photo], [3, 1], style_size=32)
    assert mix.blend_weights == (0.75, 0.25)
    for layer in STYLE_LAYERS:
        torch.testing.assert_close(mix.grams[layer], 0.75 * a.grams[layer] + 0.25 * b.grams[layer],
                                   rtol=1e-4, atol=1e-7)


def test_style_size_controls_resize(vgg16, painting):
    assert resize_long_side(torch.zeros(1, 3, 40, 20), 80).shape == (1, 3, 80, 40)
    s32 = compute_style_features(vgg16, painting, style_size=32)
    s48 = compute_style_features(vgg16, painting, style_size=None)  # painting is 48 px
    assert not torch.allclose(s32.grams["relu2_1"], s48.grams["relu2_1"])


def test_blend_weight_errors(vgg16, painting):
    with pytest.raises(InputError, match="2 blend weights for 1 style images"):
        compute_style_features(vgg16, painting, [1, 2])
    with pytest.raises(InputError, match="non-negative"):
        compute_style_features(vgg16, torch.cat([painting, painting]), [1, -1])
    with pytest.raises(InputError, match="empty"):
        compute_style_features(vgg16, [])
    with pytest.raises(InputError, match="NaN"):
        compute_style_features(vgg16, torch.full((1, 3, 8, 8), float("nan")))


def test_refuses_other_encoder(vgg16, vgg19_file, painting):
    from ganstyle.core.vgg import load_vgg_encoder_file
    feats = compute_style_features(vgg16, painting, style_size=32)
    feats.check_encoder(vgg16)
    other = load_vgg_encoder_file(vgg19_file, deepest="relu5_1")
    with pytest.raises(InputError, match="computed with encoder vgg16:.*vgg19:"):
        feats.check_encoder(other)


def test_blend_style_features_equals_joint_computation(vgg16, photo, painting):
    from ganstyle.core.features import blend_style_features
    a = compute_style_features(vgg16, painting, style_size=32)
    b = compute_style_features(vgg16, photo, style_size=32)
    joint = compute_style_features(vgg16, [painting, photo], [0.25, 0.75], style_size=32)
    mixed = blend_style_features([a, b], [1, 3])
    assert mixed.blend_weights == (0.25, 0.75)
    for layer in joint.layers:
        torch.testing.assert_close(mixed.grams[layer], joint.grams[layer], rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(mixed.means[layer], joint.means[layer], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(mixed.color_cov, joint.color_cov, rtol=1e-4, atol=1e-6)
    with pytest.raises(InputError, match="1 blend weights for 2 styles"):
        blend_style_features([a, b], [1])


def test_blend_refuses_mixed_encoders(vgg16, vgg19_file, painting):
    from ganstyle.core.features import blend_style_features
    from ganstyle.core.vgg import load_vgg_encoder_file
    other = load_vgg_encoder_file(vgg19_file, deepest="relu5_1")
    with pytest.raises(InputError, match="style 2 was computed with encoder vgg19:"):
        blend_style_features([compute_style_features(vgg16, painting, style_size=32),
                              compute_style_features(other, painting, style_size=32)])
