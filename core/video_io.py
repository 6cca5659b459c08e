"""Reading and writing video files and frame folders, one frame at a time (PyAV for files).

Frames are (1, 3, H, W) float32 in [0, 1]. Nothing holds a whole clip in memory.
"""
from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .errors import InputError
from .images import IMAGE_SUFFIXES, load_image, save_image

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".mpeg", ".mpg", ".m4v"}
# Codecs tried in order for an output file, by suffix (the first one this FFmpeg build has).
_CODECS = {".webm": ("libvpx-vp9", "libvpx"), ".mkv": ("libx264", "h264", "libvpx-vp9", "mpeg4"),
           ".mp4": ("libx264", "h264", "mpeg4"), ".mov": ("libx264", "h264", "mpeg4"),
           ".m4v": ("libx264", "h264", "mpeg4"), ".avi": ("mpeg4",), ".mpeg": ("mpeg2video",),
           ".mpg": ("mpeg2video",)}


def _av():
    try:
        import av
    except ImportError:
        raise InputError("video files need PyAV: pip install av (or give a folder of frames)") from None
    return av


def is_video_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def frame_files(folder: str | Path) -> list[Path]:
    """A folder's image files in name order (a clip's frames)."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder}: no frames ({', '.join(sorted(IMAGE_SUFFIXES))} files)")
    return files


def read_frames(source: str | Path) -> tuple[Iterator[torch.Tensor], float | None]:
    """``(frames, frames per second)`` of a video file (fps from the file) or a frame folder
    (fps None). An unreadable video is an :class:`InputError` naming it."""
    source = Path(source)
    if source.is_dir():
        return (load_image(f) for f in frame_files(source)), None
    if not source.is_file():
        raise InputError(f"{source}: no such video file or frame folder")
    av = _av()
    try:
        container = av.open(str(source))
        stream = container.streams.video[0]
    except (av.error.FFmpegError, IndexError, OSError) as e:
        raise InputError(f"{source}: cannot read it as a video ({type(e).__name__}: {e})") from None
    fps = float(stream.average_rate) if stream.average_rate else None

    def frames() -> Iterator[torch.Tensor]:
        try:
            for frame in container.decode(stream):
                array = frame.to_ndarray(format="rgb24")
                yield torch.from_numpy(array).permute(2, 0, 1)[None].float().div_(255.0)
        except av.error.FFmpegError as e:
            raise InputError(f"{source}: the video is damaged ({type(e).__name__}: {e})") from None
        finally:
            container.close()
    return frames(), fps


class FrameWriter:
    """Write frames to a video file (by suffix, e.g. .mp4, .webm) or, for a folder, as
    ``frame_000001.png`` … . Call :meth:`close` (or use ``with``) to finish the file; a video is
    written to a temporary name and renamed at the end, so a failed run leaves no half file."""

    def __init__(self, target: str | Path, fps: float | None = None):
        self.target = Path(target)
        self.fps = fps or 24.0
        self.count = 0
        self._container = self._stream = None
        if is_video_file(self.target):
            self._partial = self.target.with_name(f".{self.target.name}.partial{self.target.suffix}")
        else:
            self.target.mkdir(parents=True, exist_ok=True)

    def write(self, frame: torch.Tensor) -> None:
        if not is_video_file(self.target):
            self.count += 1
            save_image(frame, self.target / f"frame_{self.count:06d}.png")
            return
        av = _av()
        image = (frame[0] if frame.dim() == 4 else frame).clamp(0, 1).mul(255).round().to(torch.uint8)
        array = np.ascontiguousarray(image.permute(1, 2, 0).cpu().numpy())
        if self._container is None:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(self._partial), mode="w")
            codec = next((c for c in _CODECS.get(self.target.suffix.lower(), ("mpeg4",)) if c in av.codecs_available),
                         None)
            if codec is None:
                raise InputError(f"{self.target}: this FFmpeg build has no encoder for {self.target.suffix} files")
            self._stream = self._container.add_stream(codec, rate=Fraction(self.fps).limit_denominator(1001))
            # most encoders need even sizes; odd frames lose their last row/column
            self._stream.width, self._stream.height = array.shape[1] // 2 * 2, array.shape[0] // 2 * 2
            self._stream.pix_fmt = "yuv420p"
            if codec in ("libx264", "h264"):
                self._stream.options = {"crf": "18"}
        frame_av = av.VideoFrame.from_ndarray(array[:self._stream.height, :self._stream.width], format="rgb24")
        for packet in self._stream.encode(frame_av):
            self._container.mux(packet)
        self.count += 1

    def close(self) -> None:
        if self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
            self._partial.replace(self.target)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            self.close()
        elif self._container is not None:       # failed: drop the partial file
            self._container.close()
            self._container = None
            self._partial.unlink(missing_ok=True)
