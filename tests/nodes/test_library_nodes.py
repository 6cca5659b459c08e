"""GAN Stylize with a style library, called as ComfyUI calls it: a style name or blend, and MASK
inputs (ComfyUI's MASK: (B, H, W) float in [0, 1]) giving regions their own style."""
import pytest
import torch

from ganstyle.core.stylize import stylize
from ganstyle.nodes.stylize import GANStylize, LoadStyleModel

from helpers import comfy_call, tiny_generator

pytestmark = pytest.mark.usefixtures("one_thread", "auto_is_fp32")



@pytest.fixture
def library(comfy):
    lib = tiny_generator(styles=({"name": "ink"}, {"name": "oil"}))
    with torch.no_grad():
        for i, norm in enumerate(lib.style_norms().values()):
            norm.bias[1].fill_(1.5 if i % 2 else -1.5)
    lib.save_pretrained(comfy.style_dir / "lib")
    (model,) = comfy_call(LoadStyleModel, model="lib", hub_repo="")
    return model


def run(model, images, **inputs):
    (out,) = comfy_call(GANStylize, style_model=model, images=images, strength=1.0, preserve_color="none", **inputs)
    return out


def test_style_input_picks_or_blends_library_styles(library):
    images = torch.rand(1, 32, 40, 3)
    bchw = images.permute(0, 3, 1, 2)
    for spec in ("oil", "ink:0.3, oil:0.7"):
        expected = stylize(library, bchw, style=spec).permute(0, 2, 3, 1)
        torch.testing.assert_close(run(library, images, style=spec), expected, atol=1e-5, rtol=0)
    # no style given: the library's first style
    torch.testing.assert_close(run(library, images), run(library, images, style="ink"))
    with pytest.raises(ValueError, match=r"unknown style\(s\) \['pastel'\]"):
        run(library, images, style="pastel")


def test_mask_inputs_give_regions_their_style(library):
    images = torch.rand(1, 32, 48, 3)
    mask = torch.zeros(1, 16, 24)            # ComfyUI MASK, here at half the image's resolution
    mask[..., 12:] = 1.0
    out = run(library, images, style="ink", mask=mask, mask_style="oil")
    expected = stylize(library, images.permute(0, 3, 1, 2), style="ink", masks=[(mask, "oil")])
    torch.testing.assert_close(out, expected.permute(0, 2, 3, 1), atol=1e-5, rtol=0)
    ink, oil = run(library, images, style="ink"), run(library, images, style="oil")
    assert (out[:, :, :16] - ink[:, :, :16]).abs().mean() < (out[:, :, :16] - oil[:, :, :16]).abs().mean()
    assert (out[:, :, 32:] - oil[:, :, 32:]).abs().mean() < (out[:, :, 32:] - ink[:, :, 32:]).abs().mean()
    with pytest.raises(ValueError, match="mask is connected but mask_style is empty"):
        run(library, images, style="ink", mask=mask)


def test_single_style_model_refuses_style_inputs(comfy):
    tiny_generator().save_pretrained(comfy.style_dir / "single")
    (model,) = comfy_call(LoadStyleModel, model="single", hub_repo="")
    images = torch.rand(1, 16, 16, 3)
    assert run(model, images, style="").shape == (1, 16, 16, 3)
    with pytest.raises(ValueError, match="one style; styles and masks apply to a style library"):
        run(model, images, style="ink")


def test_temporal_input_treats_the_batch_as_a_clip(comfy):
    from ganstyle.core.video import VideoOptions, stylize_frames

    from helpers import synthetic_photo

    tiny_generator().save_pretrained(comfy.style_dir / "single")
    (model,) = comfy_call(LoadStyleModel, model="single", hub_repo="")
    frames = torch.cat([synthetic_photo(24, 32).roll(2 * t, -1) for t in range(4)])
    out = run(model, frames.permute(0, 2, 3, 1), temporal=0.7)
    expected = torch.cat(list(stylize_frames(model, frames.unbind(0), VideoOptions(temporal=0.7))))
    torch.testing.assert_close(out, expected.permute(0, 2, 3, 1), atol=1e-5, rtol=0)
    assert comfy.updates[-1] == (4, 4)


def test_style_features_drive_an_arbitrary_style_model(comfy, vgg16, painting, photo):
    from ganstyle.nodes.encoder import StyleFeaturesNode

    from helpers import tiny_arbitrary

    tiny_arbitrary(encoder=vgg16.identity).save_pretrained(comfy.style_dir / "arbitrary")
    (model,) = comfy_call(LoadStyleModel, model="arbitrary", hub_repo="")
    (first,) = comfy_call(StyleFeaturesNode, encoder=vgg16, style_images=painting.permute(0, 2, 3, 1), style_size=64)
    (second,) = comfy_call(StyleFeaturesNode, encoder=vgg16, style_images=photo.permute(0, 2, 3, 1), style_size=64)
    images = torch.rand(1, 32, 48, 3)
    bchw = images.permute(0, 3, 1, 2)
    out = run(model, images, style_features=first)
    torch.testing.assert_close(out, stylize(model, bchw, style=first).permute(0, 2, 3, 1), atol=1e-5, rtol=0)
    assert (out - run(model, images, style_features=second)).abs().mean() > 0.01    # another image, another style
    mask = torch.zeros(1, 32, 48)
    mask[..., 24:] = 1.0
    regions = run(model, images, style_features=first, mask=mask, mask_features=second)
    expected = stylize(model, bchw, style=first, masks=[(mask, second)]).permute(0, 2, 3, 1)
    torch.testing.assert_close(regions, expected, atol=1e-5, rtol=0)
    coloured = run(model, images, style_features=first, palette=0.5)
    torch.testing.assert_close(coloured, stylize(model, bchw, style=first, palette=0.5).permute(0, 2, 3, 1),
                               atol=1e-5, rtol=0)
    assert (coloured - out).abs().mean() > 0.01                                     # the palette changed it
    with pytest.raises(ValueError, match="connect Style Features"):
        run(model, images)
    with pytest.raises(ValueError, match="styles are fixed"):
        tiny_generator().save_pretrained(comfy.style_dir / "single")
        (single,) = comfy_call(LoadStyleModel, model="single", hub_repo="")
        run(single, images, style_features=first)
