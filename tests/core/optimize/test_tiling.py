"""core.optimize.tiling: the tiled loss equals the untiled one, and tiles follow the memory budget."""
import pytest
import torch

from ganstyle.core.features import compute_style_features
from ganstyle.core.optimize import (
    OptimizeOptions,
    StyleObjective,
    activation_bytes_per_pixel,
    plan_tiles,
    receptive_field,
)
from ganstyle.core.vgg import load_vgg_encoder_file


@pytest.mark.parametrize("height, width", [(24, 176), (176, 24)])
def test_tiled_loss_and_gradient_equal_untiled(vgg16_file, painting, height, width):
    # A shallower encoder (content relu4_2, style up to relu3_1) keeps the halo small (40 px); a
    # 176 px strip with 32 px cores is split into 6 overlapping crops, each narrower than the strip.
    encoder = load_vgg_encoder_file(vgg16_file, deepest="relu4_2")
    assert receptive_field(encoder, ["relu4_2"]) == (38, 8)
    style = compute_style_features(encoder, painting, style_size=32, layers=("relu1_1", "relu2_1", "relu3_1"))
    g = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, height, width, generator=g)
    image = (content + 0.2 * torch.randn(content.shape, generator=g)).clamp(0, 1)
    results = []
    for tile_size in (0, 32):
        objective = StyleObjective.create(encoder, content, style, OptimizeOptions(tile_size=tile_size))
        x = image.clone().requires_grad_(True)
        results.append((objective.evaluate(x), x.grad.clone(), objective.tiles))
    (untiled, grad_untiled, no_tiles), (tiled, grad_tiled, tiles) = results
    assert no_tiles is None and len(tiles) == 6
    assert max(max(t.crop_y1 - t.crop_y0, t.crop_x1 - t.crop_x0) for t in tiles) == 32 + 2 * 40
    for name in ("total", "content", "style", "tv"):
        assert tiled[name] == pytest.approx(untiled[name], rel=1e-4)
    torch.testing.assert_close(grad_tiled, grad_untiled, rtol=1e-3, atol=1e-4 * float(grad_untiled.abs().max()))


def test_auto_tiling_follows_the_memory_budget(vgg16, monkeypatch):
    import ganstyle.core.optimize.tiling as tiling_module
    per_pixel = activation_bytes_per_pixel(vgg16, ["relu5_1"])
    assert 2000 < per_pixel < 5000            # ~2.5 KB/px of activations for VGG16 in fp32
    budget = 200 * 200 * per_pixel            # room for one 200x200 crop
    monkeypatch.setattr(tiling_module, "memory_budget", lambda device: budget)
    fits = plan_tiles(vgg16, 150, 200, ["relu5_1"], 0, None)
    tiles = plan_tiles(vgg16, 600, 800, ["relu5_1"], 0, None)
    assert fits is None
    assert len(tiles) > 1 and all((t.crop_y1 - t.crop_y0) * (t.crop_x1 - t.crop_x0) <= 200 * 200 for t in tiles)
    covered = torch.zeros(600, 800)
    for t in tiles:
        covered[t.y0:t.y1, t.x0:t.x1] += 1
    assert bool((covered == 1).all())          # cores tile the image exactly once
