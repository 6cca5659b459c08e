"""Training the encoder–decoder (core/training/decoder.py, `ganstyle train-decoder`): both stages,
exact resume, the exported model."""
from __future__ import annotations

import json

import pytest
import torch

from ganstyle.core.decoder import EncoderDecoder
from ganstyle.core.errors import InputError
from ganstyle.core.training.decoder import DecoderTrainConfig, DecoderTrainer

from helpers import training_data, write_vgg

pytestmark = pytest.mark.usefixtures("one_thread")


def config(tmp_path, out="run", **changes) -> DecoderTrainConfig:
    data = training_data(tmp_path / "data", photos=3)
    encoder = tmp_path / "vgg16.safetensors"
    if not encoder.exists():
        write_vgg(encoder, "vgg16")
    options = dict(content=(data["content"],), paintings=(data["style"],), out=str(tmp_path / out),
                   encoder=str(encoder), levels=("relu2_1", "relu1_1"), full_channels=4, steps=4, image_size=32,
                   content_size=40, batch_size=2, log_every=1, sample_every=4, checkpoint_every=2, progress=False)
    return DecoderTrainConfig(**{**options, **changes})


def decoder_weights(folder) -> dict[str, torch.Tensor]:
    model = EncoderDecoder.from_pretrained(folder)
    return {k: v for k, v in model.state_dict().items() if k.startswith("decoders.")}


def test_reconstruction_run_exports_a_model_that_reconstructs_better_than_at_the_start(tmp_path):
    trainer = DecoderTrainer(config(tmp_path, steps=30, lr=3e-3, checkpoint_every=30, sample_every=30))
    log = lambda: [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]  # noqa: E731
    trainer.train()
    rows = log()
    assert rows[-1]["step"] == 30
    first = sum(r["loss"] for r in rows[:5]) / 5
    last = sum(r["loss"] for r in rows[-5:]) / 5
    assert last < 0.9 * first
    model = EncoderDecoder.from_pretrained(tmp_path / "run" / "model")
    assert model.config.levels == ("relu2_1", "relu1_1") and model.config.style_encoder.startswith("vgg16:")
    assert (tmp_path / "run" / "samples" / "step_00000030.jpg").is_file()


def test_resume_continues_exactly(tmp_path):
    straight = DecoderTrainer(config(tmp_path, out="straight"))
    straight.train()
    first = DecoderTrainer(config(tmp_path, out="split", max_minutes=0.0, steps=2))
    first.train()
    resumed = DecoderTrainer(config(tmp_path, out="split"), resume=True)
    assert resumed.step == 2
    resumed.train()
    a, b = decoder_weights(tmp_path / "straight" / "model"), decoder_weights(tmp_path / "split" / "model")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)


def test_train_levels_leave_the_other_decoders_as_they_were(tmp_path):
    DecoderTrainer(config(tmp_path, out="base", steps=2, train_levels=("relu2_1",))).train()
    before = decoder_weights(tmp_path / "base" / "model")
    # relu1_1 alone: solved in closed form, no steps
    DecoderTrainer(config(tmp_path, out="fine", init_from=str(tmp_path / "base" / "model"),
                          train_levels=("relu1_1",), steps=2)).train()
    after = decoder_weights(tmp_path / "fine" / "model")
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("decoders.relu2_1"))
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("decoders.relu1_1"))


def test_style_stage_trains_the_coarsest_decoder_against_a_discriminator(tmp_path):
    DecoderTrainer(config(tmp_path, out="base", steps=2)).train()
    trainer = DecoderTrainer(config(tmp_path, out="style", stage="style", init_from=str(tmp_path / "base" / "model"),
                                    image_size=48, steps=2))
    trainer.train()
    row = json.loads((tmp_path / "style" / "log.jsonl").read_text().splitlines()[-1])
    assert {"content", "style", "tv", "adv_g", "loss_d"} <= set(row)
    resumed = DecoderTrainer(config(tmp_path, out="style", stage="style", init_from=str(tmp_path / "base" / "model"),
                                    image_size=48, steps=3), resume=True)
    assert resumed.step == 2 and "discriminator" in resumed.modules


def test_bad_options_are_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match="init_from"):
        DecoderTrainer(config(tmp_path, stage="style"))
    with pytest.raises(InputError, match="nothing to resume"):
        DecoderTrainer(config(tmp_path, out="empty"), resume=True)


def test_command_line_trains_and_resumes(tmp_path, capsys):
    from ganstyle.train_cli.__main__ import main

    cfg = config(tmp_path)
    flags = ["train-decoder", "--content", cfg.content[0], "--paintings", cfg.paintings[0], "--out", cfg.out,
             "--encoder", cfg.encoder, "--levels", "relu2_1", "relu1_1", "--full-channels", "4", "--steps", "2",
             "--image-size", "32", "--content-size", "40", "--batch-size", "2", "--no-progress"]
    assert main(flags) == 0
    assert main(["train-decoder", "--out", cfg.out, "--resume", "--steps", "3", "--no-progress"]) == 0
    assert "step 3" in capsys.readouterr().out
    assert main(["train-decoder", "--content", cfg.content[0]]) == 2
    assert "--out" in capsys.readouterr().err


def test_the_linear_decoder_starts_at_its_least_squares_solution(tmp_path, vgg16):
    from ganstyle.core.training.decoder_losses import fit_linear_decoder

    from helpers import synthetic_photo, tiny_encoder_decoder

    model = tiny_encoder_decoder(vgg16)
    images = torch.cat([synthetic_photo(32, 32), synthetic_photo(32, 32).flip(-1)])
    before = float((model.reconstruct(images, "relu1_1") - images).pow(2).mean())
    assert fit_linear_decoder(model, "relu1_1", images)
    after = float((model.reconstruct(images, "relu1_1") - images).pow(2).mean())
    assert after < 0.01 * before and after < 1e-3
    grey = torch.full((1, 3, 32, 32), 0.7)      # the bias is not damped: a flat picture comes back flat
    assert abs(float(model.reconstruct(grey, "relu1_1").mean()) - 0.7) < 0.02
    assert not fit_linear_decoder(model, "relu2_1", images)   # deeper decoders learn by steps


def test_a_fresh_decoder_starts_at_the_images_scale(vgg16):
    from ganstyle.core.decoder import new_encoder_decoder
    from ganstyle.core.training.decoder_losses import scale_initial_weights

    from helpers import synthetic_photo

    torch.manual_seed(0)
    model = new_encoder_decoder(vgg16, ("relu2_1", "relu1_1"))
    images = torch.cat([synthetic_photo(32, 32), synthetic_photo(32, 32).flip(-1)])
    scale_initial_weights(model, "relu2_1", images)
    with torch.no_grad():
        out = model.reconstruct(images, "relu2_1")
    assert abs(float(out.mean() - images.mean())) < 1e-3 and abs(float(out.std() / images.std()) - 1) < 1e-2


def test_sigterm_stops_a_background_run_with_a_checkpoint(tmp_path):
    """A run started in the background ignores SIGINT; `kill` (SIGTERM) writes a checkpoint and stops."""
    import signal
    import subprocess
    import sys
    import time

    cfg = config(tmp_path, steps=100000, checkpoint_every=100000, sample_every=100000)
    flags = ["train-decoder", "--content", cfg.content[0], "--paintings", cfg.paintings[0], "--out", cfg.out,
             "--encoder", cfg.encoder, "--levels", "relu2_1", "relu1_1", "--full-channels", "4", "--steps", "100000",
             "--image-size", "32", "--content-size", "40", "--batch-size", "2", "--log-every", "1", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "ganstyle.train_cli", *flags], stderr=subprocess.PIPE, text=True)
    log = tmp_path / "run" / "log.jsonl"
    deadline = time.monotonic() + 120
    while not (log.exists() and log.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130
    state = json.loads((tmp_path / "run" / "checkpoints" / "latest.json").read_text())
    assert state["step"] >= 2 and EncoderDecoder.from_pretrained(tmp_path / "run" / "model")
