import csv
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from ganstyle.core.config import config_from_dict
from ganstyle.core.data import SkippedFilesWarning
from ganstyle.core.errors import ConfigError, InputError
from ganstyle.core.generator import StyleGenerator
from ganstyle.core.images import save_image
from ganstyle.core.trainer import TrainConfig, Trainer

from helpers import TINY_TRAIN_GENERATOR, synthetic_painting, synthetic_photo, tiny_train_config, training_data

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    return training_data(tmp_path_factory.mktemp("data"))


def tiny_config(data, out, **changes) -> TrainConfig:
    # the plain recipe (no tone loss, fixed-scale crops): what most tests below measure
    plain = dict(lambda_tone=0.0, content_size=0, crop_scale_min=1.0, color_jitter=0.0)
    return tiny_train_config(data, out, **{**plain, **changes})


def states(trainer):
    out = {}
    for name, module in (("g", trainer.generator), ("d", trainer.discriminator), ("ema", trainer.ema_generator)):
        out.update({f"{name}.{k}": v.detach().clone() for k, v in module.state_dict().items()})
    for name, opt in (("opt_g", trainer.opt_g), ("opt_d", trainer.opt_d)):
        for pid, st in opt.state_dict()["state"].items():
            out.update({f"{name}.{pid}.{k}": v.clone() for k, v in st.items()})
    return out


def read_log(run_dir):
    with open(Path(run_dir) / "losses.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_tiny_run_end_to_end_exports_a_loadable_model(data, vgg16, tmp_path):
    (Path(data["content"]) / "readme.txt").write_text("not a photo")
    try:
        with pytest.warns(SkippedFilesWarning, match="skipped 1 of 5 files"):
            trainer = Trainer(tiny_config(data, tmp_path / "run", sample_every=2, checkpoint_every=2,
                                          keep_checkpoints=1, export_fp16=True), encoder=vgg16)
    finally:
        (Path(data["content"]) / "readme.txt").unlink()
    model_dir = trainer.train()
    run = tmp_path / "run"
    assert model_dir == run / "model"
    for name in ("model.safetensors", "config.json", "README.md", "samples.png"):
        assert (model_dir / name).is_file(), name
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_00000002.png", "step_00000004.png"]
    assert [p.name for p in (run / "checkpoints").glob("step_*")] == ["step_00000004"]  # keep_checkpoints=1
    assert json.loads((run / "checkpoints" / "latest.json").read_text()) == {"step": 4, "folder": "step_00000004"}

    # the export is the EMA generator, in fp16, loadable with the strict loader
    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys())
    model = StyleGenerator.from_pretrained(model_dir)
    x = synthetic_photo(24, 40)
    expected = trainer.ema_generator.half().float()(x)  # same fp16-rounded weights
    torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)

    # options round-trip through the strict validator; resolved facts in run_info.json
    options = config_from_dict(TrainConfig, json.loads((run / "options.json").read_text()))
    assert options == trainer.config and options.generator == TINY_TRAIN_GENERATOR
    info = json.loads((run / "run_info.json").read_text())
    assert info["data"]["content"] == {"used": 4, "skipped": 1, "skipped_examples": [
        f"{Path(data['content']) / 'readme.txt'}: not an image file type ('.txt')"]}
    assert info["world_size"] == 1 and info["steps"] == 4
    assert set(info["final_losses"]) >= {"content", "style", "loss_d"}

    rows = read_log(run)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert rows[0]["adv_g"] == "" and rows[0]["loss_d"] == ""          # warm-up step: no GAN terms
    assert all(float(r["adv_g"]) > 0 and float(r["loss_d"]) > 0 for r in rows[1:])
    card = (model_dir / "README.md").read_text()
    assert "library_name: ganstyle" in card and "for 4 steps" in card and "![samples" in card
    assert "content: 4 image(s) from `content`, 1 unreadable file(s) skipped" in card
    assert "style: 1 image(s) from `style.png`" in card and "| `lambda_style` |" in card


def test_style_loss_falls_over_a_short_run(data, vgg16, tmp_path):
    trainer = Trainer(tiny_config(data, tmp_path / "run", steps=30, lambda_adv=0.0, lambda_content=0.1,
                                  lambda_tv=1.0, lr_g=5e-3, log_every=5), encoder=vgg16)
    trainer.train()
    style = [float(r["style"]) for r in read_log(tmp_path / "run")]
    assert len(style) == 6
    assert style[-1] < 0.5 * style[0], style


def test_resume_equals_uninterrupted_training(data, vgg16, tmp_path):
    """2 steps + resume + 2 steps == 4 steps: weights, EMA, optimiser moments and the loss log."""
    straight = Trainer(tiny_config(data, tmp_path / "straight", steps=4, d_scales=2), encoder=vgg16)
    straight.train()
    first = Trainer(tiny_config(data, tmp_path / "resumed", steps=2, d_scales=2), encoder=vgg16)
    first.train()
    resumed = Trainer(tiny_config(data, tmp_path / "resumed", steps=4, d_scales=2), resume=True, encoder=vgg16)
    assert resumed.step == 2
    resumed.train()
    a, b = states(straight), states(resumed)
    assert a.keys() == b.keys() and any(k.startswith("opt_d.") for k in a)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-6, atol=1e-7, msg=key)
    # a real difference would be visible: training moved the weights
    assert not torch.equal(a["g.head.1.weight"], states(first)["g.head.1.weight"])
    cols = ("step", "loss_g", "content", "style", "adv_g", "loss_d")
    assert [[r[c] for c in cols] for r in read_log(tmp_path / "resumed")] == \
           [[r[c] for c in cols] for r in read_log(tmp_path / "straight")]


@pytest.mark.parametrize("crash_in", ["file write", "folder rename"])
def test_crash_while_writing_a_checkpoint_keeps_the_previous_one(data, vgg16, tmp_path, monkeypatch, crash_in):
    run = tmp_path / "run"
    trainer = Trainer(tiny_config(data, run), encoder=vgg16)
    trainer.optimize_parameters(0)
    trainer.step = 1
    first = trainer.save_checkpoint()
    saved = states(trainer)
    trainer.optimize_parameters(1)
    trainer.step = 2

    real_replace = os.replace
    def crashing_replace(src, dst):
        if Path(src).is_dir() == (crash_in == "folder rename"):
            raise OSError("simulated crash")
        return real_replace(src, dst)
    monkeypatch.setattr(os, "replace", crashing_replace)
    with pytest.raises(OSError, match="simulated crash"):
        trainer.save_checkpoint()
    monkeypatch.undo()

    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest.json", first.name]
    fresh = Trainer(tiny_config(data, run), resume=True, encoder=vgg16)
    assert fresh.step == 1
    restored = states(fresh)
    for key in saved:
        torch.testing.assert_close(restored[key], saved[key], rtol=0, atol=0, msg=key)


def test_killed_mid_write_leaves_garbage_that_is_ignored_then_cleaned(data, vgg16, tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(tiny_config(data, run), encoder=vgg16)
    trainer.step = 1
    trainer.save_checkpoint()
    garbage = run / "checkpoints" / ".tmp-step_00000009-4242"
    garbage.mkdir()
    (garbage / "state.safetensors").write_bytes(b"\x10\x00\x00")  # truncated
    assert trainer.latest_checkpoint().name == "step_00000001"
    assert Trainer(tiny_config(data, run), resume=True, encoder=vgg16).step == 1
    trainer.step = 2
    trainer.save_checkpoint()
    assert not garbage.exists()


def test_ctrl_c_finishes_the_step_saves_and_stops(data, vgg16, tmp_path):
    import signal
    trainer = Trainer(tiny_config(data, tmp_path / "run", steps=10), encoder=vgg16)
    original_handler = signal.getsignal(signal.SIGINT)
    step_once = trainer.optimize_parameters

    def interrupted_step(step):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # arrives mid-step
        return step_once(step)

    trainer.optimize_parameters = interrupted_step
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert signal.getsignal(signal.SIGINT) is original_handler
    assert trainer.latest_checkpoint().name == "step_00000003"  # step 2 (0-based) was completed
    assert not (tmp_path / "run" / "model").exists()
    assert Trainer(tiny_config(data, tmp_path / "run", steps=10), resume=True, encoder=vgg16).step == 3


def test_max_minutes_stops_exports_and_resumes(data, vgg16, tmp_path, monkeypatch):
    """--max-minutes ends a run early as if it had finished (checkpoint and exported model), and
    --resume continues it. The clock is faked: every step takes 'one minute'."""
    import ganstyle.core.trainer as trainer_module

    clock = {"now": 0.0}
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: clock["now"])
    trainer = Trainer(tiny_config(data, tmp_path / "run", steps=10, max_minutes=3), encoder=vgg16)
    step_once = trainer.optimize_parameters

    def one_minute_step(step):
        clock["now"] += 60.0
        return step_once(step)

    trainer.optimize_parameters = one_minute_step
    model_dir = trainer.train()
    assert trainer.step == 3 and trainer.latest_checkpoint().name == "step_00000003"
    assert (model_dir / "model.safetensors").is_file()
    resumed = Trainer(tiny_config(data, tmp_path / "run", steps=5), resume=True, encoder=vgg16)
    assert resumed.step == 3
    resumed.train()
    assert resumed.step == 5


def test_checkpoint_is_safetensors_plus_json(data, vgg16, tmp_path):
    trainer = Trainer(tiny_config(data, tmp_path / "run", steps=2), encoder=vgg16)
    trainer.train()
    folder = trainer.latest_checkpoint()
    state = json.loads((folder / "trainer_state.json").read_text())
    assert state["step"] == 2 and state["format"] == 1
    assert len(state["rng"]["torch"]) == torch.get_rng_state().numel()
    assert state["data"]["content"]["seed"] == 0 and state["data"]["content"]["world_size"] == 1
    with safe_open(str(folder / "state.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert {"generator.head.1.weight", "ema.head.1.weight", "optim_g.0.exp_avg", "optim_d.0.exp_avg_sq"} <= keys
    assert any(".parametrizations.weight.0._u" in k for k in keys)  # spectral-norm power-iteration state

    # a damaged checkpoint is a clear error naming the file
    (folder / "trainer_state.json").write_text("{not json")
    with pytest.raises(Exception, match=r"trainer_state.json: not valid JSON"):
        Trainer(tiny_config(data, tmp_path / "run"), resume=True, encoder=vgg16)


def test_ema_follows_the_documented_schedule(data, vgg16, tmp_path):
    trainer = Trainer(tiny_config(data, tmp_path / "run", ema_decay=0.5), encoder=vgg16)
    expected = {k: v.clone() for k, v in trainer.ema_generator.state_dict().items()}
    for step in range(3):
        trainer.optimize_parameters(step)
        decay = min(0.5, (1 + step) / (10 + step))  # warm-up: 0.1, 0.18, 0.25 (cap 0.5 not reached)
        for k, v in trainer.generator.state_dict().items():
            expected[k] = decay * expected[k] + (1 - decay) * v
    for k, v in trainer.ema_generator.state_dict().items():
        torch.testing.assert_close(v, expected[k], rtol=1e-5, atol=1e-7)
    ema, live = trainer.ema_generator.state_dict(), trainer.generator.state_dict()
    assert not torch.equal(ema["head.1.weight"], live["head.1.weight"])


def test_discriminator_only_trains_after_warmup(data, vgg16, tmp_path):
    trainer = Trainer(tiny_config(data, tmp_path / "run", warmup_steps=2), encoder=vgg16)
    d0 = {k: v.clone() for k, v in trainer.discriminator.named_parameters()}
    for step in range(2):
        losses = trainer.optimize_parameters(step)
        assert set(losses) == {"content", "style", "tv", "loss_g"}
    assert all(torch.equal(p, d0[k]) for k, p in trainer.discriminator.named_parameters())
    assert trainer.opt_d.state_dict()["state"] == {}
    losses = trainer.optimize_parameters(2)
    assert set(losses) == {"content", "style", "tv", "adv_g", "loss_g", "loss_d", "d_real", "d_fake"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert not all(torch.equal(p, d0[k]) for k, p in trainer.discriminator.named_parameters())


def test_no_discriminator_when_lambda_adv_is_zero(data, vgg16, tmp_path):
    trainer = Trainer(tiny_config(data, tmp_path / "run", lambda_adv=0.0, warmup_steps=0), encoder=vgg16)
    assert "loss_d" not in trainer.optimize_parameters(0)


def test_bf16_autocast_step_is_finite(data, vgg16, tmp_path):
    trainer = Trainer(tiny_config(data, tmp_path / "run", mixed_precision="bf16", warmup_steps=0), encoder=vgg16)
    assert trainer.amp
    losses = trainer.optimize_parameters(0)
    assert all(torch.isfinite(v) for v in losses.values()) and losses["content"].dtype == torch.float32


def test_existing_run_is_never_overwritten_and_resume_checks_options(data, vgg16, tmp_path):
    Trainer(tiny_config(data, tmp_path / "run", steps=1), encoder=vgg16).train()
    with pytest.raises(ConfigError, match=r"already holds a training run .*pass --resume"):
        Trainer(tiny_config(data, tmp_path / "run", steps=1), encoder=vgg16)
    with pytest.raises(ConfigError, match=r"options differ .*lambda_style: 1\.0 → 2\.0"):
        Trainer(tiny_config(data, tmp_path / "run", steps=3, lambda_style=2.0), resume=True, encoder=vgg16)
    assert Trainer(tiny_config(data, tmp_path / "run", steps=3, log_every=2), resume=True, encoder=vgg16).step == 1


@pytest.mark.parametrize("changes,error,pattern", [
    (dict(style_layer_weights=(1.0, 1.0)), ConfigError, r"needs 5 values"),
    (dict(style_layer_weights=(1.0, 1.0, -1.0, 1.0, 1.0)), ConfigError, r"non-negative"),
    (dict(image_size=8), ConfigError, r"field 'image_size' is 8, must be at least 16"),
    (dict(image_size=16, d_layers=3), ConfigError, r"image_size 16 is too small .*needs at least 24\)"),
    (dict(generator={"wings": 2}), ConfigError, r"unknown GeneratorConfig fields \['wings'\]"),
    (dict(adv_mode="wgan"), ConfigError, r"field 'adv_mode' is 'wgan'"),
    (dict(content=()), ConfigError, r"'content' is empty"),
])
def test_bad_options_are_clear_errors(data, vgg16, tmp_path, changes, error, pattern):
    with pytest.raises(error, match=pattern):
        Trainer(tiny_config(data, tmp_path / "run", **changes), encoder=vgg16)


def test_style_target_is_the_averaged_gram_of_evenly_spaced_style_images(data, vgg16, tmp_path):
    from ganstyle.core.features import compute_style_features
    style_dir = tmp_path / "domain"
    style_dir.mkdir()
    for i in range(5):
        save_image(synthetic_painting(48, 48, seed=10 + i), style_dir / f"work{i}.png")
    trainer = Trainer(tiny_config(data, tmp_path / "run", style=str(style_dir), style_target_images=2), encoder=vgg16)
    assert trainer.style_target_count == 2 and len(trainer.style_images) == 5
    expected = compute_style_features(vgg16, [trainer.style_images.as_float(i) for i in (0, 4)], style_size=None)
    for layer, gram in trainer.style_grams.items():
        torch.testing.assert_close(gram, expected.grams[layer])
    everything = Trainer(tiny_config(data, tmp_path / "run2", style=str(style_dir)), encoder=vgg16)
    assert everything.style_target_count == 5
    assert not torch.allclose(everything.style_grams["relu1_1"], trainer.style_grams["relu1_1"])
    # the discriminator's real samples come from all five
    crops = everything.style_sampler
    assert {crops._image_for(k) for k in range(5)} == {0, 1, 2, 3, 4}


def test_bad_data_fails_before_training(data, vgg16, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no usable content images in .*empty"):
        Trainer(tiny_config(data, tmp_path / "run", content=str(tmp_path / "empty")), encoder=vgg16)
    assert not (tmp_path / "run").exists()


def test_warp_term_is_logged_and_trains(data, vgg16, tmp_path):
    trainer = Trainer(tiny_config(data, tmp_path / "run", steps=3, lambda_warp=10.0), encoder=vgg16)
    trainer.train()
    rows = read_log(tmp_path / "run")
    assert all(float(r["warp"]) > 0 for r in rows)
    off = read_log_of(Trainer(tiny_config(data, tmp_path / "off", steps=1), encoder=vgg16), tmp_path / "off")
    assert off[0]["warp"] == ""


def read_log_of(trainer, run_dir):
    trainer.train()
    return read_log(run_dir)
