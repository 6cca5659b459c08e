"""OptimizeStylize node, called the way ComfyUI calls it: inside torch.inference_mode(), with IMAGE
tensors (B, H, W, C), and with Cancel raising from comfy_env.throw_if_interrupted()."""
import pytest
import torch

from ganstyle.core.features import compute_style_features
from ganstyle.core.vgg import load_vgg_encoder_file
from ganstyle.nodes import DISPLAY_NAMES, NODE_CLASSES, comfy_env
from ganstyle.nodes.optimize import OptimizeStylize

ARGS = dict(steps=6, long_side=80, content_weight=1.0, style_weight=1.0, tv_weight=0.1, init="content",
            preserve_color="none", seed=0, start_side=40, preview_every=2)


class FakeInterrupt(Exception):
    """Stands in for comfy.model_management.InterruptProcessingException."""


class FakeProgress:
    instances = []

    def __init__(self, total):
        self.total, self.updates = total, []
        FakeProgress.instances.append(self)

    def update(self, value, preview=None):
        self.updates.append((value, None if preview is None else tuple(preview.shape)))


@pytest.fixture
def comfy_inputs(vgg16_file, photo, painting):
    with torch.inference_mode():   # ComfyUI loads models and runs nodes in inference mode
        encoder = load_vgg_encoder_file(vgg16_file)
        style = compute_style_features(encoder, painting, style_size=48)
    return encoder, photo.permute(0, 2, 3, 1).contiguous(), style


@pytest.fixture(autouse=True)
def fake_progress(monkeypatch):
    FakeProgress.instances = []
    monkeypatch.setattr(comfy_env, "Progress", FakeProgress)


def test_registered_with_tooltips():
    assert NODE_CLASSES["OptimizeStylize"] is OptimizeStylize
    assert "OptimizeStylize" in DISPLAY_NAMES
    spec = OptimizeStylize.INPUT_TYPES()
    for group in ("required", "optional"):
        for name, (_, opts) in spec[group].items():
            assert opts.get("tooltip"), f"input '{name}' has no tooltip"
    assert tuple(OptimizeStylize.RETURN_TYPES) == ("IMAGE",)


def test_stylizes_a_batch_under_inference_mode_with_progress(comfy_inputs):
    encoder, content, style = comfy_inputs
    batch = torch.cat([content, content.flip(2)])
    with torch.inference_mode():
        (image,) = OptimizeStylize.execute(encoder, batch, style, **ARGS)
    assert image.shape == (2, 60, 80, 3) and image.dtype == torch.float32
    assert 0 <= float(image.min()) and float(image.max()) <= 1
    resized = torch.nn.functional.interpolate(batch.permute(0, 3, 1, 2), size=(60, 80), mode="bilinear",
                                              align_corners=False).permute(0, 2, 3, 1)
    assert (image - resized).abs().mean() > 0.01
    (bar,) = FakeProgress.instances
    # 6 evaluations at 40 px then 6 (min_steps, capped by steps) at 80 px, for each of the 2 images
    assert bar.total == 24 and [v for v, _ in bar.updates] == list(range(1, 25))
    previews = [shape for _, shape in bar.updates if shape is not None]
    assert (1, 3, 30, 40) in previews and (1, 3, 60, 80) in previews and len(previews) == 12


def test_cancel_stops_at_the_next_step(comfy_inputs, monkeypatch):
    encoder, content, style = comfy_inputs
    calls = []

    def interrupt_at_4():
        calls.append(1)
        if len(calls) == 4:
            raise FakeInterrupt()

    monkeypatch.setattr(comfy_env, "throw_if_interrupted", interrupt_at_4)
    with torch.inference_mode(), pytest.raises(FakeInterrupt):
        OptimizeStylize.execute(encoder, content, style, **ARGS)
    assert len(calls) == 4
    assert [v for v, _ in FakeProgress.instances[0].updates] == [1, 2, 3]


def test_errors_are_shown_as_ganstyle_messages(comfy_inputs, vgg19_file):
    encoder, content, style = comfy_inputs
    other = load_vgg_encoder_file(vgg19_file)
    with torch.inference_mode(), pytest.raises(ValueError, match=r"^\[ganstyle\] these style features were computed"):
        OptimizeStylize.execute(other, content, style, **ARGS)
    with torch.inference_mode(), pytest.raises(ValueError, match=r"^\[ganstyle\] .*IMAGE contains NaN"):
        OptimizeStylize.execute(encoder, torch.full_like(content, float("nan")), style, **ARGS)
