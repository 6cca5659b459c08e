"""Photos gathered from packages, deduplicated, split for hold-out and written out as a corpus.

:mod:`ganstyle.core.photo_sources` finds a package's reviewed photos as :class:`Photo` objects;
this module makes the corpus of them:

* **duplicates** are dropped (:func:`dedupe`): identical pixels (a hash of the decoded image), and
  the same picture at several resolutions or encodings (a 32×32 thumbnail within 2 % and the same
  aspect ratio), keeping the largest;
* a **hold-out split** (:func:`choose_holdout`) for evaluation, never used for training;
* :func:`write_corpus` copies the photos into one folder with a manifest (licence, copyright and
  origin per photo).
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import InputError
from .photo_catalog import RESERVED_PACKAGES

DEFAULT_HOLDOUT = 8
HOLDOUT_MIN_SIDE = 1024
HOLDOUT_RULE = (f"N groups (a photo, or the frames of one sequence) whose photos have a long side of at least "
                f"{HOLDOUT_MIN_SIDE} px are held out: packages take turns in name order, within a package "
                f"groups go by ascending sha256 of the group's name")
THUMB = 32                 # side of the thumbnail compared for near-duplicates
NEAR_DUPLICATE = 0.02      # mean absolute difference of thumbnails (0..1) below which two are one
ASPECT_TOLERANCE = 0.02    # relative difference of aspect ratios within which two may be one


@dataclass
class Photo:
    """A reviewed photo of a package: where it came from, its notice, its original bytes and what
    dedupe needs of its pixels (the decoded image itself is not kept: corpora run to gigapixels)."""
    package: str
    version: str
    kind: str
    original: str
    licence: str
    copyright: str
    note: str
    group: str
    data: bytes = field(repr=False)             # the original file's bytes
    width: int = 0
    height: int = 0
    mode: str = ""
    pixel_hash: str = ""
    thumb: np.ndarray | None = field(default=None, repr=False)
    file: str = ""
    split: str = "train"
    duplicates: list[str] = field(default_factory=list)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def member(self) -> str:
        """The original's path inside its package (after the ``!`` of a wheel)."""
        return self.original.rsplit("!", 1)[-1]

    def measure(self) -> Photo:
        image = decode(self.member, self.data)
        self.width, self.height, self.mode = image.width, image.height, image.mode
        self.pixel_hash, self.thumb = pixel_hash(image), thumbnail(image)
        return self


@dataclass
class SourceReport:
    package: str
    kind: str
    status: str                  # "found" | "missing"
    hint: str = ""
    version: str = ""
    photos: int = 0
    skipped: dict[str, str] = field(default_factory=dict)      # original → reason
    unreviewed: list[str] = field(default_factory=list)
    duplicates: int = 0
    train: int = 0
    holdout: int = 0


def decode(name: str, data: bytes) -> Image.Image:
    """Bytes of an image file (or a ``.npz`` holding one uint8 array) → RGB or L PIL image."""
    if name.endswith(".npz"):
        with np.load(io.BytesIO(data)) as arrays:
            array = arrays[arrays.files[0]]
        if array.dtype != np.uint8:
            array = np.clip(array, 0, 255).astype(np.uint8)
        return Image.fromarray(array)
    image = Image.open(io.BytesIO(data))
    image.load()
    if image.mode in ("L", "RGB"):
        return image
    return image.convert("L" if image.mode in ("1", "I", "I;16", "LA") else "RGB")


def pixel_hash(image: Image.Image) -> str:
    """sha256 of the decoded pixels (mode, size and bytes): equal for the same picture in PNG, PGM
    or an array, unlike a hash of the file."""
    h = hashlib.sha256(f"{image.mode}{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def thumbnail(image: Image.Image) -> np.ndarray:
    """(THUMB, THUMB) grey levels in [0, 1] of the whole picture, for near-duplicate checks."""
    return np.asarray(image.convert("L").resize((THUMB, THUMB), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0


def near_duplicates(a: Photo, b: Photo) -> bool:
    """The same picture at another size or encoding: aspect ratios within ASPECT_TOLERANCE and
    thumbnails within NEAR_DUPLICATE."""
    ra, rb = a.width / a.height, b.width / b.height
    if abs(ra - rb) > ASPECT_TOLERANCE * max(ra, rb):
        return False
    return float(np.abs(a.thumb - b.thumb).mean()) < NEAR_DUPLICATE


def dedupe(photos: list[Photo]) -> list[Photo]:
    """Drop duplicates. Identical pixels: the first photo (in source order) stays. The same picture
    at several sizes or encodings (:func:`near_duplicates`): the one with the most pixels stays
    (then the largest file: lossless over lossy). A kept photo lists the originals it stands for in
    ``duplicates``. The result keeps the input order."""
    first: dict[str, Photo] = {}
    for p in photos:
        if p.pixel_hash in first:
            first[p.pixel_hash].duplicates.append(p.original)
        else:
            first[p.pixel_hash] = p
    unique = list(first.values())
    ranked = sorted(range(len(unique)), key=lambda i: (-unique[i].pixels, -len(unique[i].data), i))
    kept: list[int] = []
    for i in ranked:
        twin = next((k for k in kept if near_duplicates(unique[k], unique[i])), None)
        if twin is None:
            kept.append(i)
        else:
            unique[twin].duplicates += [unique[i].original, *unique[i].duplicates]
    return [unique[i] for i in sorted(kept)]


def choose_holdout(photos: list[Photo], count: int, min_side: int = HOLDOUT_MIN_SIDE) -> None:
    """Mark ``count`` groups of photos ``split="holdout"`` (a group: one photo, or the frames of one
    sequence); see :data:`HOLDOUT_RULE`. Only groups whose photos all have a long side of at least
    ``min_side`` are eligible, so a benchmark at that size never judges upsampled photos.
    Deterministic, and independent of the order photos are found in."""
    eligible: dict[str, dict[str, bool]] = {}
    for p in photos:
        groups = eligible.setdefault(p.package, {})
        groups[p.group] = groups.get(p.group, True) and max(p.width, p.height) >= min_side
    queues = {pkg: sorted((g for g, ok in groups.items() if ok), key=lambda g: hashlib.sha256(g.encode()).hexdigest())
              for pkg, groups in eligible.items()}
    chosen: set[str] = set()
    while len(chosen) < count and any(queues.values()):
        for pkg in sorted(queues):
            if queues[pkg] and len(chosen) < count:
                chosen.add(queues[pkg].pop(0))
    for p in photos:
        p.split = "holdout" if p.group in chosen else "train"


# --------------------------------------------------------------------------- the corpus

MANIFEST_FIELDS = ("file", "split", "package", "version", "kind", "licence", "copyright", "original",
                   "width", "height", "mode", "bytes", "sha256", "note", "duplicates")


@dataclass
class Corpus:
    photos: list[Photo]
    reports: list[SourceReport]

    def rows(self) -> list[dict]:
        return [{"file": p.file, "split": p.split, "package": p.package, "version": p.version,
                 "kind": p.kind, "licence": p.licence, "copyright": p.copyright, "original": p.original,
                 "width": p.width, "height": p.height, "mode": p.mode,
                 "bytes": len(p.data), "sha256": p.pixel_hash, "note": p.note,
                 "duplicates": " ".join(p.duplicates)} for p in self.photos]


def name_files(photos: list[Photo]) -> None:
    """``<split>/<package>/<name>``: the file name of the original (its folder prepended when two
    photos of a package share a name; frames of a sequence get the sequence's name), a ``.png``
    suffix for formats other than JPEG and PNG."""
    stems: dict[tuple[str, str], int] = {}
    for p in photos:
        key = (p.package, Path(p.member).stem)
        stems[key] = stems.get(key, 0) + 1
    for p in photos:
        path = Path(p.member)
        stem = path.stem if stems[(p.package, path.stem)] == 1 else f"{path.parent.name}-{path.stem}"
        if ":" not in p.group:                       # a named sequence
            stem = f"{p.group}-{path.stem}"
        suffix = path.suffix.lower() if path.suffix.lower() in (".jpg", ".jpeg", ".png") else ".png"
        p.file = f"{p.split}/{p.package}/{stem}{suffix}"


def write_corpus(corpus: Corpus, out: Path, *, overwrite: bool = False) -> None:
    """Write the photos (original bytes for JPEG/PNG, else PNG) and ``manifest.csv`` /
    ``manifest.json`` into ``out``. An existing corpus there is replaced only with ``overwrite``
    (and then only its ``train/``, ``holdout/`` and manifests are removed)."""
    import csv
    import shutil

    from .io import atomic_write_json

    out = Path(out)
    if (out / "manifest.json").exists() or (out / "train").exists() or (out / "holdout").exists():
        if not overwrite:
            raise InputError(f"{out} already holds a photo corpus; pass --overwrite to replace it")
        for sub in ("train", "holdout"):
            shutil.rmtree(out / sub, ignore_errors=True)
    for p in corpus.photos:
        target = out / p.file
        target.parent.mkdir(parents=True, exist_ok=True)
        if Path(p.member).suffix.lower() == target.suffix:
            target.write_bytes(p.data)
        else:
            decode(p.member, p.data).save(target)
    rows = corpus.rows()
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_json(out / "manifest.json", {
        "format": 1,
        "holdout_rule": HOLDOUT_RULE,
        "photos": rows,
        "sources": [vars(r) for r in corpus.reports],
        "reserved_never_read": sorted(RESERVED_PACKAGES),
    })
