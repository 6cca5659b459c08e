import pytest
import torch

from ganstyle.core.discriminator import DiscriminatorConfig, PatchDiscriminator, discriminator_config
from ganstyle.core.errors import ConfigError, InputError
from ganstyle.core.losses import adversarial_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def test_patch_output_shapes_single_and_multi_scale():
    torch.manual_seed(0)
    d = PatchDiscriminator(DiscriminatorConfig(base_channels=8, num_layers=3, num_scales=1))
    (out,) = d(torch.rand(2, 3, 64, 48))
    assert out.shape == (2, 1, 6, 4)  # 64 → 8 → 6 and 48 → 6 → 4
    d2 = PatchDiscriminator(DiscriminatorConfig(base_channels=8, num_layers=2, num_scales=3))
    outs = d2(torch.rand(1, 3, 96, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 1, 22, 22), (1, 1, 10, 10), (1, 1, 4, 4)]


def test_receptive_field_and_minimum_size():
    assert DiscriminatorConfig().receptive_field() == 70  # pix2pix's 70×70 PatchGAN
    assert DiscriminatorConfig(num_layers=1).receptive_field() == 16
    cfg = DiscriminatorConfig(base_channels=4, num_layers=2, num_scales=2)
    assert cfg.min_input_size() == 24
    d = PatchDiscriminator(cfg)
    assert all(o.shape[-1] >= 1 for o in d(torch.rand(1, 3, 24, 24)))
    with pytest.raises(InputError, match=r"at least 24×24 pixels, got \(20, 40\)"):
        d(torch.rand(1, 3, 20, 40))
    with pytest.raises(InputError, match=r"\(B, 3, H, W\)"):
        d(torch.rand(1, 1, 32, 32))


def test_receptive_field_is_what_the_network_sees():
    torch.manual_seed(0)
    cfg = DiscriminatorConfig(base_channels=4, num_layers=2, spectral_norm=False)
    d = PatchDiscriminator(cfg).eval()
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    d(x)[0][0, 0, 5, 5].backward()  # an interior logit: its field is not clipped by the border
    rows = x.grad.abs().sum((0, 1, 3)).nonzero().flatten()
    assert int(rows.max() - rows.min() + 1) == cfg.receptive_field() == 34


def test_spectral_norm_bounds_every_convolution():
    torch.manual_seed(0)
    d = PatchDiscriminator(DiscriminatorConfig(base_channels=8, num_layers=2)).train()
    for p in d.parameters():
        p.data.mul_(10.0)  # make the raw weights large
    with torch.no_grad():
        for _ in range(30):  # power iteration runs once per training-mode forward
            d(torch.rand(1, 3, 32, 32))
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert float(sigma) == pytest.approx(1.0, abs=0.05)
    raw = PatchDiscriminator(DiscriminatorConfig(base_channels=8, num_layers=2, spectral_norm=False))
    assert not any("parametrizations" in k for k in raw.state_dict())


def test_samples_judged_independently_of_the_batch():
    torch.manual_seed(0)
    d = PatchDiscriminator(DiscriminatorConfig(base_channels=8, num_layers=2, num_scales=2)).eval()
    x = torch.rand(3, 3, 32, 32)
    together = d(x)
    alone = d(x[1:2])
    for t, a in zip(together, alone):
        torch.testing.assert_close(t[1:2], a, rtol=1e-5, atol=1e-6)


def test_learns_to_separate_real_from_fake_patches():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    d = PatchDiscriminator(DiscriminatorConfig(base_channels=8, num_layers=2))
    opt = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(40):
        real = (torch.rand(4, 1, 24, 24, generator=g) > 0.5).float().expand(-1, 3, -1, -1)  # texture
        fake = torch.rand(4, 3, 1, 1, generator=g).expand(-1, -1, 24, 24)                   # flat colour
        logits = d(torch.cat([real, fake]))[0]
        loss = 0.5 * (adversarial_loss(logits[:4], True) + adversarial_loss(logits[4:], False))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.05 < losses[0]


def test_config_validation():
    assert discriminator_config(num_scales=2).num_scales == 2
    with pytest.raises(ConfigError, match=r"field 'num_scales' is 9, must be at most 4"):
        discriminator_config(num_scales=9)
    with pytest.raises(ConfigError, match=r"unknown fields \['depth'\]"):
        discriminator_config(depth=3)
    d = PatchDiscriminator.from_config_dict({"base_channels": 4, "max_channels": 8, "num_layers": 1,
                                             "num_scales": 1, "spectral_norm": False})
    assert d.config_dict()["base_channels"] == 4 and d.config_dict()["_class_name"] == "DiscriminatorConfig"
