import pytest
import torch

from ganstyle.core.images import save_image
from ganstyle.core.video import VideoOptions, stylize_frames
from ganstyle.core.video_io import FrameWriter, read_frames
from ganstyle.train_cli.__main__ import main

from helpers import synthetic_photo, tiny_generator

pytestmark = pytest.mark.usefixtures("one_thread", "auto_is_fp32")



@pytest.fixture
def model_dir(tmp_path):
    return tiny_generator().save_pretrained(tmp_path / "model")


def clip_frames(n=5):
    return [synthetic_photo(32, 48).roll(2 * t, -1) for t in range(n)]


def test_frame_folder_clip_gives_the_temporal_result(model_dir, tmp_path):
    frames = tmp_path / "frames"
    for i, frame in enumerate(clip_frames()):
        save_image(frame, frames / f"f{i:03d}.png")
    out = tmp_path / "out"
    assert main(["stylize", str(frames), "-o", str(out), "--video", "--model", str(model_dir), "--temporal", "0.6",
                 "--device", "cpu"]) == 0
    written = sorted(out.iterdir())
    assert [p.name for p in written] == [f"frame_{i:06d}.png" for i in range(1, 6)]
    expected = list(stylize_frames(tiny_generator(), read_frames(frames)[0], VideoOptions(temporal=0.6)))
    got = list(read_frames(out)[0])
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, atol=1 / 255 + 1e-6, rtol=0)
    assert main(["stylize", str(frames), "-o", str(out), "--video", "--model", str(model_dir)]) == 2   # exists


def test_video_file_in_and_out(model_dir, tmp_path):
    pytest.importorskip("av")
    source = tmp_path / "clip.mp4"
    with FrameWriter(source, fps=12) as writer:
        for frame in clip_frames(6):
            writer.write(frame)
    frames, fps = read_frames(source)
    assert fps == pytest.approx(12) and len(list(frames)) == 6
    out = tmp_path / "styled.webm"
    assert main(["stylize", str(source), "-o", str(out), "--model", str(model_dir), "--device", "cpu"]) == 0
    frames, fps = read_frames(out)
    frames = list(frames)
    assert len(frames) == 6 and frames[0].shape == (1, 3, 32, 48) and fps == pytest.approx(12)
    assert not list(tmp_path.glob(".*partial*"))


def test_unreadable_video_is_a_clear_error(model_dir, tmp_path, capsys):
    pytest.importorskip("av")
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    assert main(["stylize", str(bad), "-o", str(tmp_path / "o.mp4"), "--model", str(model_dir)]) == 2
    assert "broken.mp4: cannot read it as a video" in capsys.readouterr().err
