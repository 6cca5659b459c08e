import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ganstyle.core.generator import StyleGenerator
from ganstyle.core.images import save_image
from ganstyle.train_cli.__main__ import build_parser, main

from helpers import synthetic_painting, synthetic_photo, tiny_generator_flags, write_vgg

TINY = [*tiny_generator_flags(), "--image-size", "32", "--style-size", "48", "--warmup-steps", "1",
        "--d-channels", "4", "--d-layers", "2", "--log-every", "1", "--sample-every", "0", "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("cli_data")
    (root / "content").mkdir()
    for i in range(3):
        save_image(synthetic_photo(40, 48).roll(9 * i, dims=-1), root / "content" / f"p{i}.jpg")
    (root / "style").mkdir()
    save_image(synthetic_painting(48, 48, seed=1), root / "style" / "a.png")
    save_image(synthetic_painting(48, 56, seed=2), root / "style" / "b.png")
    write_vgg(root / "vgg16.safetensors", "vgg16", seed=0)
    return {"content": str(root / "content"), "style": str(root / "style"), "encoder": str(root / "vgg16.safetensors")}


def base_args(data, out, *extra):
    return ["train", "--content", data["content"], "--style", data["style"], "--out", str(out),
            "--encoder", data["encoder"], *TINY, *extra]


def read_log(run_dir):
    with open(Path(run_dir) / "losses.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_every_flag_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["train"]
    flags = [a for a in sub._actions if a.option_strings and a.dest != "help"]
    assert len(flags) >= 30
    assert all(a.help and len(a.help) > 10 for a in flags), [a.dest for a in flags if not a.help]
    text = sub.format_help()
    for flag in ("--content", "--style", "--out", "--steps", "--image-size", "--batch-size", "--lr-g", "--lr-d",
                 "--lambda-content", "--lambda-style", "--lambda-adv", "--lambda-tv", "--encoder", "--device",
                 "--seed", "--resume"):
        assert flag in text


def test_default_encoder_is_vgg19_and_older_runs_keep_vgg16():
    """VGG19 is the design's (and the README's) default; an options.json written without the field
    keeps the VGG16 it was trained with."""
    from ganstyle.core.config import config_from_dict, config_to_dict
    from ganstyle.core.training.config import TrainConfig

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    assert "(default vgg19)" in " ".join(sub.format_help().split())
    assert TrainConfig().encoder == "vgg19"
    saved = config_to_dict(TrainConfig(content="c", style="s", out="o"))
    del saved["encoder"]
    assert config_from_dict(TrainConfig, saved).encoder == "vgg16"


def test_flags_are_made_from_every_train_config_field():
    import dataclasses

    from ganstyle.core.trainer import TrainConfig
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    by_dest = {a.dest: a for a in sub._actions}
    for f in dataclasses.fields(TrainConfig):
        assert f.name in by_dest, f.name
        assert by_dest[f.name].help.startswith(f.metadata["doc"].split(";")[0]), f.name
        assert by_dest[f.name].default is None  # only the flags given change a resumed run's options
    assert by_dest["mixed_precision"].choices == ("auto", "bf16", "fp32")
    assert by_dest["batch_size"].option_strings == ["--batch-size", "--batch"]
    assert by_dest["style_layer_weights"].nargs == 5 and by_dest["out"].required


def test_train_command_exports_a_model(data, tmp_path, capsys):
    assert main(base_args(data, tmp_path / "run", "--steps", "2", "--batch", "2")) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(tmp_path / "run" / "model")
    assert "warning" not in captured.err
    model = StyleGenerator.from_pretrained(tmp_path / "run" / "model")
    assert model(synthetic_photo(20, 28)).shape == (1, 3, 20, 28)
    options = json.loads((tmp_path / "run" / "options.json").read_text())
    assert options["batch_size"] == 2 and options["generator"]["base_channels"] == 4
    assert options["style"] == [data["style"]]
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert info["data"]["style"]["used"] == 2 and info["encoder"]["arch"] == "vgg16"


def test_resume_takes_saved_options_and_continues(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(base_args(data, run, "--steps", "2", "--batch", "1", "--lambda-style", "3")) == 0
    assert main(["train", "--out", str(run), "--resume", "--steps", "3"]) == 0
    assert [int(r["step"]) for r in read_log(run)] == [1, 2, 3]
    options = json.loads((run / "options.json").read_text())
    assert options["steps"] == 3 and options["lambda_style"] == 3.0 and options["image_size"] == 32
    assert main(["train", "--out", str(run), "--resume", "--lambda-style", "1"]) == 2
    err = capsys.readouterr().err
    assert "--lambda-style 1.0 (the run has 3.0)" in err and "--previews" in err and "num_previews" not in err


def test_resume_without_a_run_says_so(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", "--out", str(tmp_path / "empty"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"no run to resume in {tmp_path / 'empty'} (no options.json)" in err
    assert "start one with --content and --style" in err


def test_unreadable_files_give_one_warning_line(data, tmp_path, capsys):
    content = tmp_path / "content"
    content.mkdir()
    for name in ("p0.jpg", "p1.jpg"):
        (content / name).write_bytes((Path(data["content"]) / name).read_bytes())
    (content / "notes.txt").write_text("x")
    (content / "truncated.jpg").write_bytes((Path(data["content"]) / "p2.jpg").read_bytes()[:40])
    argv = base_args(data, tmp_path / "run", "--steps", "1")
    argv[argv.index("--content") + 1] = str(content)
    assert main(argv) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(lines) == 1 and lines[0].startswith("ganstyle train: warning: content images")
    assert "skipped 2 of 4 files" in lines[0]


@pytest.mark.parametrize("setup,args,message", [
    (lambda d: (d / "x.txt").write_text("x"), "content", "no usable content images in"),
    (lambda d: None, "no-style", "--style required to start a new run"),
    (lambda d: None, "generator", "--generator expects FIELD=VALUE, got 'oops'"),
])
def test_bad_input_is_a_clear_error(data, tmp_path, capsys, setup, args, message):
    bad = tmp_path / "bad"
    bad.mkdir()
    setup(bad)
    if args == "content":
        argv = ["train", "--content", str(bad), "--style", data["style"], "--out", str(tmp_path / "run")]
    elif args == "no-style":
        argv = ["train", "--content", data["content"], "--out", str(tmp_path / "run")]
    else:
        argv = base_args(data, tmp_path / "run", "--generator", "oops")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganstyle train: error:") and message in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_two_process_ddp_matches_one_process_with_the_global_batch(data, tmp_path):
    """torchrun --nproc_per_node 2 (gloo, CPU) with batch 1 per rank == 1 process with batch 2."""
    ddp_run, single_run = tmp_path / "ddp", tmp_path / "single"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "ganstyle.train_cli", *base_args(data, ddp_run, "--steps", "3", "--batch", "1")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "weights identical on all 2 ranks" in proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(ddp_run / "model")  # printed by rank 0 only
    assert json.loads((ddp_run / "run_info.json").read_text())["world_size"] == 2

    assert main(base_args(data, single_run, "--steps", "3", "--batch", "2")) == 0
    ddp_rows, single_rows = read_log(ddp_run), read_log(single_run)
    assert [r["images"] for r in ddp_rows] == [r["images"] for r in single_rows] == ["2", "4", "6"]
    # Step 1 sees the same images from the same initial weights: equal to float precision (a
    # sharding mistake would change these by tens of percent). Later steps drift by ~1e-3: Adam's
    # first update is ±lr for every parameter, so float noise in near-zero gradients (e.g. conv
    # biases right before an instance norm, which the norm removes) becomes ±lr differences.
    for step, (a, b) in enumerate(zip(ddp_rows, single_rows), start=1):
        for key in ("content", "style", "tv", "adv_g", "loss_d"):
            if a[key]:
                assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-5 if step == 1 else 1e-2), (step, key)
    a = load_file(str(ddp_run / "checkpoints" / "step_00000003" / "state.safetensors"))
    b = load_file(str(single_run / "checkpoints" / "step_00000003" / "state.safetensors"))
    for key in (k for k in a if k.startswith("discriminator.")):  # Adam moved them by ~4e-4
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=2e-5, msg=key)
    # The generators compute nearly the same function: their gap is small next to what training did.
    x = synthetic_photo(32, 40)
    ddp_model, single_model = (StyleGenerator.from_pretrained(r / "model") for r in (ddp_run, single_run))
    torch.manual_seed(0)  # the Trainer's initialisation
    initial = StyleGenerator(single_model.config).eval()
    with torch.no_grad():
        gap = (ddp_model(x) - single_model(x)).abs().mean()
        moved = (single_model(x) - initial(x)).abs().mean()
    assert gap < 0.1 * moved, (float(gap), float(moved))


def test_a_new_style_on_a_library_takes_the_new_style_defaults_unless_given(tmp_path):
    """--base (only the new style's norms train) defaults to NEW_STYLE_DEFAULTS; a flag given wins."""
    from ganstyle.core.training.config import NEW_STYLE_DEFAULTS, TrainConfig
    from ganstyle.train_cli.train import build_config

    parser = build_parser()
    common = ["train", "--content", "photos", "--style", "new.jpg", "--base", "library-fast", "--out", str(tmp_path)]
    config = build_config(parser.parse_args(common))
    assert (config.lr_g, config.lambda_style) == (NEW_STYLE_DEFAULTS["lr_g"], NEW_STYLE_DEFAULTS["lambda_style"])
    assert (config.lr_g, config.lambda_style) != (TrainConfig.lr_g, TrainConfig.lambda_style)
    config = build_config(parser.parse_args([*common, "--lr-g", "0.002"]))
    assert (config.lr_g, config.lambda_style) == (0.002, NEW_STYLE_DEFAULTS["lambda_style"])
    plain = build_config(parser.parse_args(["train", "--content", "photos", "--style", "new.jpg", "--out",
                                            str(tmp_path / "plain")]))
    assert (plain.lr_g, plain.lambda_style) == (TrainConfig.lr_g, TrainConfig.lambda_style)
