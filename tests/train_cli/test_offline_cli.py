"""The first hour without network: each command fails at once with one line saying what to do."""
import time

import pytest

from ganstyle.core.images import save_image
from ganstyle.train_cli.__main__ import main

from helpers import cut_network, synthetic_painting, synthetic_photo, tiny_generator_flags


@pytest.fixture
def no_network(monkeypatch):
    return cut_network(monkeypatch)


def run_offline(argv, capsys) -> str:
    start = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - start < 5
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err                # one message, no retry lines
    assert "Retrying" not in captured.err and ".." not in lines[0]
    return lines[0]


def test_pull_without_network(no_network, tmp_path, capsys):
    msg = run_offline(["pull", "org/name", "--cache-dir", str(tmp_path / "cache")], capsys)
    assert msg.startswith("ganstyle pull: error: cannot pull 'org/name'")
    assert "cannot be reached" in msg and "127.0.0.1:9" in msg
    assert "https://huggingface.co/org/name/tree/main" in msg and "--model FOLDER" in msg


def test_stylize_hub_model_without_network(no_network, tmp_path, capsys):
    save_image(synthetic_photo(), tmp_path / "photo.png")
    msg = run_offline(["stylize", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out.png"),
                       "--model", "org/name", "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"], capsys)
    assert msg.startswith("ganstyle stylize: error:")
    assert "https://huggingface.co/org/name/tree/main" in msg and "--model FOLDER" in msg
    assert not (tmp_path / "out.png").exists()


def test_train_without_vgg_weights_or_network(no_network, tmp_path, capsys):
    (tmp_path / "content").mkdir()
    save_image(synthetic_photo(40, 48), tmp_path / "content" / "p.jpg")
    save_image(synthetic_painting(48, 48), tmp_path / "style.png")
    msg = run_offline(["train", "--content", str(tmp_path / "content"), "--style", str(tmp_path / "style.png"),
                       "--out", str(tmp_path / "run"), *tiny_generator_flags(), "--image-size", "32",
                       "--style-size", "48", "--no-progress", "--device", "cpu"], capsys)
    assert msg.startswith("ganstyle train: error:") and "cannot be reached" in msg
    assert "https://huggingface.co/timm/vgg19.tv_in1k/blob/main/model.safetensors" in msg
    assert "--encoder FILE" in msg
