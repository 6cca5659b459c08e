"""``ganstyle optimize``: Optimize Stylize from the command line (random-weight VGG16 file, 48x64 px
photos, a handful of loss evaluations per run)."""
import dataclasses
import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image

import ganstyle.core.optimize as core_optimize
from ganstyle.core.features import compute_style_features
from ganstyle.core.images import load_image, save_image
from ganstyle.core.optimize import OptimizeOptions, optimize_stylize
from ganstyle.core.vgg import load_vgg_encoder_file
from ganstyle.nodes.encoder import StyleFeaturesNode
from ganstyle.nodes.optimize import OPTIONAL, REQUIRED, OptimizeStylize
from ganstyle.train_cli.__main__ import build_parser, main
from ganstyle.train_cli.optimize import HAND_MADE, build_options

from helpers import comfy_call, synthetic_painting, synthetic_photo

pytestmark = pytest.mark.usefixtures("one_thread", "auto_is_fp32")

# Two scales (32 px, then 64 px), 3 evaluations each; non-default settings, so each must reach the engine.
NODE = dict(steps=3, long_side=64, start_side=32, content_weight=1.5, style_weight=2.0, tv_weight=0.2,
            init="noise", preserve_color="histogram", seed=7, optimizer="lbfgs", preview_every=2)
FLAGS = ["--steps", "3", "--long-side", "64", "--start-side", "32", "--content-weight", "1.5", "--style-weight",
         "2", "--tv-weight", "0.2", "--init", "noise", "--preserve-color", "histogram", "--seed", "7",
         "--optimizer", "lbfgs"]
# The same run through the core (what the flags mean), for runs the node cannot make (a stop at a step).
OPTIONS = OptimizeOptions(steps=3, long_side=64, start_side=32, content_weight=1.5, style_weight=2.0, tv_weight=0.2,
                          init="noise", color_mode="histogram", seed=7)


@pytest.fixture
def files(tmp_path, vgg16_file):
    """A photo, two paintings (PNG) and the encoder file; ``common``: the CLI's encoder arguments."""
    photo, a, b = tmp_path / "photo.png", tmp_path / "a.png", tmp_path / "b.png"
    save_image(synthetic_photo(48, 64), photo)
    save_image(synthetic_painting(48, 48, seed=1), a)
    save_image(synthetic_painting(48, 48, seed=2), b)
    common = ["--encoder", str(vgg16_file), "--device", "cpu", "--style-size", "64"]
    return dict(photo=photo, a=a, b=b, encoder=vgg16_file, common=common)


def _png(path):
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]


def _comfy(image):
    return image.permute(0, 2, 3, 1).contiguous()


def _core_run(files, progress=None):
    """The CLI's run of ``files['photo']`` with style ``files['a']`` done through the core (its own
    ``optimize_stylize``, not the one the Ctrl-C tests patch)."""
    encoder = load_vgg_encoder_file(files["encoder"])
    style = compute_style_features(encoder, load_image(files["a"]), style_size=64)
    return optimize_stylize(encoder, load_image(files["photo"]), style, OPTIONS, progress=progress)


def _last_line(err: str) -> str:
    return err.replace("\r", "\n").strip().splitlines()[-1]


def test_matches_the_node(files, tmp_path, capsys):
    """Same photo, blended paintings, encoder and settings: the saved image is the node's output."""
    out = tmp_path / "out.png"
    assert main(["optimize", str(files["photo"]), "--style-image", f"{files['a']}:0.7", "--style-image",
                 f"{files['b']}:0.3", "-o", str(out), *files["common"], *FLAGS]) == 0
    captured = capsys.readouterr()
    assert "wrote 1 image(s)" in captured.out
    assert "optimize: 100%" in captured.err and "photo.png scale 2/2 (64 px) step 6/6" in captured.err  # the bar

    with torch.inference_mode():   # ComfyUI loads models in inference mode
        encoder = load_vgg_encoder_file(files["encoder"])
    paintings = _comfy(torch.cat([load_image(files["a"]), load_image(files["b"])]))
    (style,) = comfy_call(StyleFeaturesNode, encoder=encoder, style_images=paintings, style_size=64,
                          blend_weights="0.7, 0.3")
    (image,) = comfy_call(OptimizeStylize, encoder=encoder, content=_comfy(load_image(files["photo"])), style=style,
                          **NODE)
    expected = image.permute(0, 3, 1, 2)
    assert expected.shape == (1, 3, 48, 64)
    assert (expected - load_image(files["photo"])).abs().mean() > 0.02   # it did stylise
    torch.testing.assert_close(_png(out), expected, atol=1 / 255 + 1e-6, rtol=0)


def test_folders_and_unreadable_files(files, tmp_path, capsys):
    photos = tmp_path / "photos"
    save_image(synthetic_photo(40, 52), photos / "x.png")
    save_image(synthetic_photo(30, 40).flip(-1), photos / "sub" / "y.jpg")
    (photos / "broken.png").write_bytes(b"not a png")
    (photos / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert main(["optimize", str(photos), "--style-image", str(files["a"]), "-o", str(out), *files["common"],
                 "--steps", "2", "--long-side", "32", "--start-side", "32"]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                  if p.is_file()) == ["sub/y.png", "x.png"]
    assert Image.open(out / "x.png").size == (32, 25) and Image.open(out / "sub" / "y.png").size == (32, 24)
    captured = capsys.readouterr()
    assert "skipped 1 of 3 files that could not be read as images" in captured.err
    assert "wrote 2 image(s)" in captured.out


def _interrupt_at(monkeypatch, step: int, presses: int = 1):
    """Press Ctrl-C (a real SIGINT) ``presses`` times when the optimiser reports ``step``."""
    real = core_optimize.optimize_stylize

    def optimize_stylize(encoder, content, style, options, progress):
        def pressing(s, total, losses, preview):
            if s == step:
                for _ in range(presses):
                    os.kill(os.getpid(), signal.SIGINT)
            return progress(s, total, losses, preview)
        return real(encoder, content, style, options, progress=pressing)

    monkeypatch.setattr(core_optimize, "optimize_stylize", optimize_stylize)


def test_ctrl_c_writes_the_latest_image(files, tmp_path, capsys, monkeypatch):
    before = signal.getsignal(signal.SIGINT)
    _interrupt_at(monkeypatch, 4)   # the first step of the 64 px scale
    out = tmp_path / "out.png"
    assert main(["optimize", str(files["photo"]), "--style-image", str(files["a"]), "-o", str(out),
                 *files["common"], *FLAGS]) == 130
    assert _last_line(capsys.readouterr().err) == (f"ganstyle optimize: interrupted at step 4/6 of {files['photo']}; "
                                                   f"wrote the image as it was to {out}")
    # the image of the optimiser's 4th evaluation, as the core returns it when told to stop there
    expected = _core_run(files, progress=lambda step, total, losses, preview: step >= 4)
    assert expected.shape == (1, 3, 48, 64)
    torch.testing.assert_close(_png(out), expected, atol=1 / 255 + 1e-6, rtol=0)
    assert (expected - _core_run(files)).abs().max() > 0.01   # not the finished result
    assert signal.getsignal(signal.SIGINT) is before


def test_second_ctrl_c_quits_without_writing(files, tmp_path, capsys, monkeypatch):
    before = signal.getsignal(signal.SIGINT)
    _interrupt_at(monkeypatch, 2, presses=2)
    out = tmp_path / "out.png"
    assert main(["optimize", str(files["photo"]), "--style-image", str(files["a"]), "-o", str(out),
                 *files["common"], *FLAGS]) == 130
    assert _last_line(capsys.readouterr().err) == "ganstyle optimize: interrupted"
    assert not out.exists()
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("change,message", [
    ({"photo": "missing.jpg"}, "missing.jpg: no such file or folder"),
    ({"style": "missing.jpg"}, "style image not found: missing.jpg"),
    ({"extra": ["--steps", "0"]}, "--steps is 0, must be at least 1"),
    ({"extra": ["--long-side", "99999"]}, "--long-side is 99999, must be at most 16384"),
    ({"extra": ["--style-layer-weights", "relu9_1=1"]}, "--style-layer-weights: unknown layer 'relu9_1'"),
    ({"extra": ["--style-layer-weights", "relu1_1=0"]}, "--style-layer-weights needs at least one positive weight"),
    ({"extra": ["--style-size", "8"]}, "--style-size is 8, must be at least 16"),
    ({"encoder": "does-not-exist"}, "cannot resolve weights reference 'does-not-exist'"),
])
def test_errors_are_one_line_and_write_nothing(files, tmp_path, capsys, monkeypatch, change, message):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out" / "result.png"
    args = ["optimize", change.get("photo", str(files["photo"])), "--style-image", change.get("style", str(files["a"])),
            "-o", str(out), *files["common"], "--encoder", change.get("encoder", str(files["encoder"])),
            *change.get("extra", [])]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganstyle optimize: error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_refuses_to_overwrite(files, tmp_path, capsys):
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    args = ["optimize", str(files["photo"]), "--style-image", str(files["a"]), "-o", str(out), *files["common"]]
    assert main(args) == 2
    assert "1 output file(s) already exist" in capsys.readouterr().err and out.read_bytes() == b"keep me"


def test_every_option_has_one_flag_from_its_field():
    """The flags are OptimizeOptions' fields (all the node's inputs among them); what is not given keeps
    the field's default, and the command runs without previews (it shows none)."""
    parser = build_parser()
    dests = {a.dest for a in parser._subparsers._group_actions[0].choices["optimize"]._actions}
    fields = {f.name for f in dataclasses.fields(OptimizeOptions)}
    assert fields - set(HAND_MADE) <= dests and "color_mode" in dests
    node_fields = {n if isinstance(n, str) else n[1] for n in REQUIRED + OPTIONAL}
    assert node_fields - dests == {"preview_every"}
    given = build_options(parser.parse_args(["optimize", "a.png", "-o", "o", "--style-image", "s.png",
                                             "--no-cuda-graph", "--preserve-color", "--style-layer-weights",
                                             "relu1_1=2", "relu3_1=0.5"]))
    assert given == OptimizeOptions(cuda_graph=False, color_mode="luminance", preview_every=0,
                                    style_layer_weights={"relu1_1": 2.0, "relu3_1": 0.5})
