"""Training data: content photos and the style source, decoded once and cached in memory.

Both sides are small enough to keep decoded on the CPU (a few hundred photos at ~320 px are tens
of MB as uint8), which keeps a CPU training run busy with the networks rather than JPEG decoding.

* :class:`ImageSet` — images from a folder, one file, or several files/folders, decoded with
  EXIF orientation applied and downscaled once. Unreadable and non-image files are skipped with
  ONE :class:`SkippedFilesWarning` that counts them; an empty or all-bad source is an
  :class:`~ganstyle.core.errors.InputError` raised before any training starts.
* :class:`CropSampler` — random square crops with horizontal flips, as a *pure function of the
  step*: the batch of step ``s`` is fully determined by ``(seed, s)``. Resuming at step ``s``
  therefore continues the exact same data order, and under DistributedDataParallel each rank takes
  its own slice of the same global batch (so N ranks × batch b sees what 1 process × batch N·b
  would see).
"""
from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from .errors import InputError
from .images import IMAGE_SUFFIXES

# Decompression-bomb guard: PIL warns above ~89 Mpx and raises above twice that; a training image
# larger than this is almost certainly a mistake, and we refuse it per file (skipped, counted).
_MAX_PIXELS = 200_000_000


class SkippedFilesWarning(UserWarning):
    """Some files of a data folder were not readable images and were skipped."""


@dataclass
class ImageSet:
    """Decoded images, each a (3, H, W) uint8 tensor, plus where they came from.

    ``files[i]`` is the source of ``images[i]``; ``skipped`` lists ``(file, reason)`` for every
    file that was not used."""
    images: list[torch.Tensor]
    files: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    what: str = "images"

    def __len__(self) -> int:
        return len(self.images)

    def as_float(self, index: int) -> torch.Tensor:
        """Image ``index`` as (1, 3, H, W) float32 in [0, 1]."""
        return self.images[index].unsqueeze(0).float().div_(255.0)

    def summary(self) -> dict:
        return {"used": len(self.images), "skipped": len(self.skipped),
                "sizes": sorted({f"{t.shape[2]}x{t.shape[1]}" for t in self.images})[:8]}


def list_image_files(sources: str | os.PathLike | Sequence[str | os.PathLike], *, what: str = "images"
                     ) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand files and folders (recursively, sorted) into candidate image files.

    Returns ``(candidates, skipped)``; files without an image suffix are ``skipped`` (hidden files,
    such as ``.DS_Store``, are ignored silently). A source that does not exist is an InputError."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    if not sources:
        raise InputError(f"no {what} given: pass an image file or a folder of images")
    candidates: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for source in sources:
        path = Path(os.path.expanduser(str(source)))
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                if not p.is_file() or any(part.startswith(".") for part in p.relative_to(path).parts):
                    continue
                if p.suffix.lower() in IMAGE_SUFFIXES:
                    candidates.append(p)
                else:
                    skipped.append((p, f"not an image file type ('{p.suffix or 'no suffix'}')"))
        elif path.is_file():
            candidates.append(path)  # named explicitly: try to decode whatever the suffix
        else:
            raise InputError(f"{what} source not found: {path} (give an image file or a folder of images)")
    return candidates, skipped


def decode_image(path: Path, *, short_side: int | None = None, long_side: int | None = None,
                 min_short_side: int = 0, enlarge: bool = True) -> torch.Tensor:
    """Read one image → (3, H, W) uint8, EXIF-rotated, RGB, resized so its short side is
    ``short_side`` (or its long side is ``long_side``; with ``enlarge=False`` only if that makes it
    smaller), and at least ``min_short_side``.

    Raises whatever PIL raises for unreadable files (callers count and skip them)."""
    with Image.open(path) as im:
        if im.width * im.height > _MAX_PIXELS:
            raise ValueError(f"{im.width}x{im.height} pixels is larger than the {_MAX_PIXELS:,}-pixel limit")
        target = _target_size(im.width, im.height, short_side, long_side, min_short_side, enlarge)
        # JPEG: let libjpeg decode at 1/2, 1/4 or 1/8 scale directly (much faster for big photos).
        im.draft("RGB", (max(target[0], 1), max(target[1], 1)))
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(im, dtype=np.float32)
            arr = arr / max(float(arr.max()), 1.0) * 255.0
            im = Image.fromarray(arr.astype(np.uint8), "L")
        im = im.convert("RGB")
        target = _target_size(im.width, im.height, short_side, long_side, min_short_side, enlarge)
        if (im.width, im.height) != target:
            im = im.resize(target, Image.Resampling.BICUBIC, reducing_gap=3.0)
        arr = np.array(im, dtype=np.uint8)  # a writable copy (PIL's buffer is read-only)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.size == 0:
        raise ValueError(f"decoded to an unusable array of shape {arr.shape}")
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def _target_size(w: int, h: int, short_side, long_side, min_short_side, enlarge=True) -> tuple[int, int]:
    if w < 1 or h < 1:
        raise ValueError(f"image has no pixels ({w}x{h})")
    scale = 1.0
    if short_side:
        scale = short_side / min(w, h)
    elif long_side:
        scale = long_side / max(w, h)
    if not enlarge:
        scale = min(scale, 1.0)
    if min_short_side and min(w, h) * scale < min_short_side:
        scale = min_short_side / min(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def load_image_set(sources: str | os.PathLike | Sequence[str | os.PathLike], *, what: str = "images",
                   short_side: int | None = None, long_side: int | None = None,
                   min_short_side: int = 0, enlarge: bool = True, warn: bool = True) -> ImageSet:
    """Decode every image of ``sources`` (files and/or folders) once, downscaled.

    Files that are not readable images are skipped; if any were, ONE
    :class:`SkippedFilesWarning` says how many and gives a few examples. No usable image at all is
    an :class:`InputError` naming the sources."""
    candidates, skipped = list_image_files(sources, what=what)
    images, files = [], []
    for path in candidates:
        try:
            images.append(decode_image(path, short_side=short_side, long_side=long_side,
                                       min_short_side=min_short_side, enlarge=enlarge))
            files.append(path)
        except Exception as e:  # PIL raises many types: UnidentifiedImageError, OSError, SyntaxError…
            skipped.append((path, f"cannot read as an image ({type(e).__name__}: {e})"))
    names = ", ".join(str(s) for s in ([sources] if isinstance(sources, (str, os.PathLike)) else sources))
    if not images:
        detail = f"; {len(skipped)} file(s) were not readable images, e.g. {skipped[0][0]}: {skipped[0][1]}" \
            if skipped else "; no files found"
        raise InputError(f"no usable {what} in {names}{detail}. Give a folder with .jpg/.png/.webp "
                         f"images (or an image file).")
    if skipped and warn:
        examples = "; ".join(f"{p.name}: {reason}" for p, reason in skipped[:3])
        warnings.warn(f"{what} ({names}): skipped {len(skipped)} of {len(skipped) + len(images)} files that "
                      f"are not readable images ({examples}{' …' if len(skipped) > 3 else ''})",
                      SkippedFilesWarning, stacklevel=2)
    return ImageSet(images, files, skipped, what)


def _seed_for(seed: int, stream: str, index: int) -> int:
    """A well-mixed 63-bit seed for sample ``index`` of a random ``stream`` (no shared RNG state,
    so any sample can be regenerated on its own, on any rank, after any restart)."""
    digest = hashlib.blake2b(f"{seed}:{stream}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class CropSampler:
    """Random ``crop_size`` squares with random horizontal flips from an :class:`ImageSet`.

    The global batch of step ``s`` holds samples ``s·B·W … (s+1)·B·W − 1`` (B = per-rank batch,
    W = world size); sample ``k`` is image ``perm_e[k mod n]`` of epoch ``e = k // n`` (a fresh
    seeded permutation per epoch, so every image is seen once per epoch), cropped and flipped with
    a generator seeded by ``(seed, stream, k)``. Rank ``r`` returns its slice ``[r·B, (r+1)·B)``.
    Images smaller than the crop are upscaled (the cache normally guarantees they are not).

    ``scale_min`` < 1 makes each crop cover a random square of between ``crop_size`` and
    ``crop_size / scale_min`` source pixels (log-uniform, at most the image's short side), resized
    to ``crop_size``: the generator then sees a scene at several scales, which a few dozen photos
    otherwise cannot teach it. ``jitter`` > 0 varies exposure, gamma and saturation of each crop
    by up to ± that fraction. With the defaults (1.0, 0.0) crops are plain, as before.
    """

    def __init__(self, images: ImageSet, crop_size: int, batch_size: int, *, seed: int, stream: str,
                 rank: int = 0, world_size: int = 1, flip: bool = True, scale_min: float = 1.0,
                 jitter: float = 0.0):
        if len(images) == 0:
            raise InputError(f"no {images.what} to sample from")
        if crop_size < 1 or batch_size < 1:
            raise ValueError(f"crop_size and batch_size must be positive, got {crop_size}, {batch_size}")
        if not 0 < scale_min <= 1 or not 0 <= jitter < 1:
            raise ValueError(f"scale_min must be in (0, 1] and jitter in [0, 1), got {scale_min}, {jitter}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.images, self.crop_size, self.batch_size = images, crop_size, batch_size
        self.seed, self.stream, self.rank, self.world_size, self.flip = seed, stream, rank, world_size, flip
        self.scale_min, self.jitter = scale_min, jitter
        self._perm_cache: tuple[int, list[int]] | None = None

    def state_dict(self) -> dict:
        """JSON-able description; batches depend only on this and the step."""
        return {"seed": self.seed, "stream": self.stream, "crop_size": self.crop_size,
                "batch_size": self.batch_size, "world_size": self.world_size, "num_images": len(self.images),
                "scale_min": self.scale_min, "jitter": self.jitter}

    def _image_for(self, k: int) -> int:
        n = len(self.images)
        epoch = k // n
        if self._perm_cache is None or self._perm_cache[0] != epoch:
            g = torch.Generator().manual_seed(_seed_for(self.seed, f"{self.stream}/epoch", epoch))
            self._perm_cache = (epoch, torch.randperm(n, generator=g).tolist())
        return self._perm_cache[1][k % n]

    def sample(self, k: int) -> torch.Tensor:
        """Global sample ``k`` → (3, S, S) float32 in [0, 1]."""
        img = self.images.images[self._image_for(k)]
        g = torch.Generator().manual_seed(_seed_for(self.seed, self.stream, k))
        s = self.crop_size
        h, w = img.shape[-2:]
        if h < s or w < s:  # upscale so the crop fits (short side = crop size)
            scale = s / min(h, w)
            size = (max(s, round(h * scale)), max(s, round(w * scale)))
            img = torch.nn.functional.interpolate(img[None].float(), size=size, mode="bilinear",
                                                  align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
            h, w = size
        side = s
        if self.scale_min < 1:   # a random scale: side in [s, s / scale_min], log-uniform
            largest = max(s, min(h, w, round(s / self.scale_min)))
            side = round(math.exp(math.log(s) + float(torch.rand((), generator=g)) * math.log(largest / s)))
        top = int(torch.randint(0, h - side + 1, (1,), generator=g))
        left = int(torch.randint(0, w - side + 1, (1,), generator=g))
        crop = img[:, top:top + side, left:left + side]
        if self.flip and bool(torch.rand((), generator=g) < 0.5):
            crop = crop.flip(-1)
        crop = crop.float().div_(255.0)
        if side != s:
            crop = torch.nn.functional.interpolate(crop[None], size=(s, s), mode="bilinear", antialias=True,
                                                   align_corners=False)[0].clamp_(0, 1)
        if self.jitter > 0:
            crop = self._jitter(crop, g)
        return crop

    def _jitter(self, crop: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Exposure (gain), gamma and saturation, each by a random factor within ± ``jitter``."""
        gain, gamma, saturation = (1 + self.jitter * (2 * torch.rand(3, generator=g) - 1)).tolist()
        crop = crop.pow(gamma).mul_(gain)
        grey = crop.mean(0, keepdim=True)
        return (grey + (crop - grey) * saturation).clamp_(0, 1)

    def batch(self, step: int) -> torch.Tensor:
        """This rank's part of the batch of ``step`` → (B, 3, S, S) float32 in [0, 1] (CPU)."""
        first = (step * self.world_size + self.rank) * self.batch_size
        return torch.stack([self.sample(first + j) for j in range(self.batch_size)])


def preview_images(images: ImageSet, count: int, short_side: int) -> list[torch.Tensor]:
    """The first ``count`` images, resized so their short side is ``short_side``, for sample grids.
    Each (1, 3, h, w) float32 in [0, 1]."""
    out = []
    for i in range(min(count, len(images))):
        img = images.as_float(i)
        h, w = img.shape[-2:]
        scale = short_side / min(h, w)
        if abs(scale - 1) > 1e-6:
            img = torch.nn.functional.interpolate(img, size=(max(1, round(h * scale)), max(1, round(w * scale))),
                                                  mode="bilinear", align_corners=False, antialias=scale < 1)
        out.append(img.clamp(0, 1))
    return out
