"""Reliability of training: bad data folders, SIGKILL at random moments + --resume, disk full
while writing a checkpoint."""
from __future__ import annotations

import csv
import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ganstyle.core.data import SkippedFilesWarning, load_image_set
from ganstyle.core.errors import InputError
from ganstyle.core.generator import StyleGenerator
from ganstyle.core.images import save_image
from ganstyle.core.io import check_safetensors_file
from ganstyle.core.trainer import TrainConfig, Trainer
from ganstyle.train_cli.__main__ import main as cli_main

from helpers import TINY_GENERATOR, synthetic_painting, synthetic_photo, tiny_generator, tiny_generator_flags, write_vgg

TINY_FLAGS = [*tiny_generator_flags(), "--image-size", "32",
              "--style-size", "48", "--warmup-steps", "1", "--d-channels", "4", "--d-layers", "2",
              "--log-every", "1", "--sample-every", "0", "--no-progress", "--batch", "1",
              "--device", "cpu", "--seed", "3"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("faults_data")
    content = root / "content"
    (content / "sub").mkdir(parents=True)
    for i in range(3):
        save_image(synthetic_photo(40, 48).roll(9 * i, dims=-1), content / f"p{i}.png")
    # junk a user's folder really contains: skipped and counted, never fatal
    (content / "notes.txt").write_text("not an image")
    (content / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"garbage" * 20)   # JPEG magic, then junk
    (content / "empty.png").write_bytes(b"")
    (content / "sub" / "model.safetensors").write_bytes(b"\0" * 16)
    (content / ".DS_Store").write_bytes(b"\0\1")
    save_image(synthetic_photo(36, 36, seed=2), content / "sub" / "p3.jpg")
    style = root / "style.png"
    save_image(synthetic_painting(48, 48), style)
    vgg = write_vgg(root / "vgg16.safetensors", "vgg16", seed=0)
    return {"root": root, "content": str(content), "style": str(style), "encoder": str(vgg)}


def tiny_config(data, out, **changes) -> TrainConfig:
    options = dict(content=(data["content"],), style=(data["style"],), out=str(out), generator=TINY_GENERATOR,
                   steps=4, image_size=32, batch_size=1, warmup_steps=1, d_channels=4, d_layers=2,
                   style_size=48, log_every=1, sample_every=0, checkpoint_every=0, num_previews=1,
                   progress=False, encoder=data["encoder"], device="cpu")
    options.update(changes)
    return TrainConfig(**options)


# ---- data folders -------------------------------------------------------------------------------
def test_non_images_and_broken_files_are_skipped_and_counted(data):
    with pytest.warns(SkippedFilesWarning, match="skipped 4 of 8 files"):
        images = load_image_set(data["content"], what="content photos", short_side=32)
    assert len(images) == 4
    skipped = sorted(p.name for p, _ in images.skipped)
    assert skipped == ["broken.jpg", "empty.png", "model.safetensors", "notes.txt"]
    assert images.summary()["skipped"] == 4


def test_train_cli_reports_skipped_files(data, tmp_path, capsys):
    args = ["train", "--content", data["content"], "--style", data["style"], "--out", str(tmp_path / "run"),
            "--encoder", data["encoder"], "--steps", "1", *TINY_FLAGS]
    assert cli_main(args) == 0
    err = capsys.readouterr().err
    assert "warning: content" in err and "skipped 4 of 8" in err
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert info["data"]["content"]["used"] == 4 and info["data"]["content"]["skipped"] == 4


@pytest.mark.parametrize("junk", [False, True])
def test_empty_folder_errors_before_training(data, tmp_path, capsys, junk):
    empty = tmp_path / "empty"
    empty.mkdir()
    if junk:
        (empty / "readme.md").write_text("x")
        (empty / "bad.png").write_bytes(b"\x89PNG\r\n")
    out = tmp_path / "run"
    args = ["train", "--content", str(empty), "--style", data["style"], "--out", str(out),
            "--encoder", data["encoder"], *TINY_FLAGS]
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert "error: no usable content" in err and str(empty) in err
    assert "Traceback" not in err
    assert not (out / "checkpoints").exists() and not (out / "model").exists()
    with pytest.raises(InputError, match="no usable"):
        Trainer(tiny_config(data, tmp_path / "run2", content=(str(empty),)))


def test_missing_source_is_a_clear_error(data, tmp_path, capsys):
    args = ["train", "--content", str(tmp_path / "nope"), "--style", data["style"], "--out",
            str(tmp_path / "run"), "--encoder", data["encoder"], *TINY_FLAGS]
    assert cli_main(args) == 2
    assert "not found" in capsys.readouterr().err


# ---- SIGKILL + resume -------------------------------------------------------------------------
def _checkpoint_steps(run: Path) -> list[int]:
    return sorted(int(p.name.split("_")[1]) for p in (run / "checkpoints").glob("step_*"))


def _assert_checkpoints_load(run: Path) -> None:
    for folder in (run / "checkpoints").glob("step_*"):
        state = json.loads((folder / "trainer_state.json").read_text())
        assert state["step"] == int(folder.name.split("_")[1])
        check_safetensors_file(folder / "state.safetensors")
        tensors = load_file(str(folder / "state.safetensors"))
        assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())


def test_sigkill_at_random_moments_then_resume(data, tmp_path):
    steps = 16
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "ganstyle.train_cli", "train", "--content", data["content"], "--style",
           data["style"], "--out", str(run), "--encoder", data["encoder"], "--steps", str(steps),
           "--checkpoint-every", "1", "--keep-checkpoints", "2", *TINY_FLAGS]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    rng = random.Random(1234)
    kills = 0
    for attempt, kill_after in enumerate((2, 6, 10)):
        proc = subprocess.Popen(cmd + (["--resume"] if attempt else []), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            done = _checkpoint_steps(run) if (run / "checkpoints").exists() else []
            if done and done[-1] >= kill_after:
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.15))  # a seeded random moment: mid-step or mid-checkpoint
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(30)
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.read().decode()[-2000:]
        proc.stderr.close()
        _assert_checkpoints_load(run)  # whatever moment the kill hit, checkpoints on disk are whole
    assert kills >= 2, "training finished before the kills; the test lost its point"
    final = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr[-3000:]
    assert "resumed from" in final.stderr
    _assert_checkpoints_load(run)
    assert _checkpoint_steps(run)[-1] == steps
    assert not list((run / "checkpoints").glob(".tmp-*"))
    state = json.loads((run / "checkpoints" / f"step_{steps:08d}" / "trainer_state.json").read_text())
    assert state["step"] == steps
    with open(run / "losses.csv", newline="") as f:
        logged = [int(row["step"]) for row in csv.DictReader(f)]
    assert logged == list(range(1, steps + 1))  # every step logged exactly once across the kills
    model = StyleGenerator.from_pretrained(run / "model")
    with torch.no_grad():
        y = model(synthetic_photo(24, 32))
    assert y.shape == (1, 3, 24, 32) and torch.isfinite(y).all()

    # resume is exact: the killed-and-resumed run ends where an uninterrupted one does
    straight = tmp_path / "straight"
    ok = subprocess.run([*cmd[:cmd.index("--out") + 1], str(straight), *cmd[cmd.index("--out") + 2:]],
                        env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr[-3000:]
    a = load_file(str(run / "model" / "model.safetensors"))
    b = load_file(str(straight / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


# ---- disk full --------------------------------------------------------------------------------
def test_disk_full_while_writing_checkpoint_keeps_previous(data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    trainer = Trainer(tiny_config(data, run, steps=2, checkpoint_every=1))
    trainer.train()
    before = _checkpoint_steps(run)
    assert before[-1] == 2
    good = {p.name: (p / "state.safetensors").read_bytes() for p in (run / "checkpoints").glob("step_*")}
    latest_before = (run / "checkpoints" / "latest.json").read_text()

    real_fdopen = os.fdopen

    class FullDisk:
        """A file that accepts a few KiB and then fails like a full disk."""
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[: 2048])
            self.f.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FullDisk(real_fdopen(fd, *a, **k)))
    trainer.step += 1  # pretend another step ran; its checkpoint cannot be written
    with pytest.raises(OSError) as info:
        trainer.save_checkpoint()
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()

    # nothing half-written is visible: previous checkpoints intact, no temp folder left, latest unchanged
    assert _checkpoint_steps(run) == before
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".tmp")]
    assert (run / "checkpoints" / "latest.json").read_text() == latest_before
    for name, blob in good.items():
        assert (run / "checkpoints" / name / "state.safetensors").read_bytes() == blob
    _assert_checkpoints_load(run)
    resumed = Trainer(tiny_config(data, run, steps=3, checkpoint_every=1), resume=True)
    assert resumed.step == 2
    resumed.train()
    assert _checkpoint_steps(run)[-1] == 3
    StyleGenerator.from_pretrained(run / "model")


def test_disk_full_while_exporting_keeps_previous_model(tmp_path, monkeypatch):
    first = tiny_generator(seed=0).save_pretrained(tmp_path / "model")
    blob = (first / "model.safetensors").read_bytes()
    second = tiny_generator(seed=1)
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    with pytest.raises(OSError):
        second.save_pretrained(tmp_path / "model")
    monkeypatch.undo()
    assert (first / "model.safetensors").read_bytes() == blob
    assert sorted(p.name for p in first.iterdir()) == ["config.json", "model.safetensors"]
    StyleGenerator.from_pretrained(first)
