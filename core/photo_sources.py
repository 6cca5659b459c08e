"""Real photos that installable packages ship, gathered into a content-photo corpus.

Training a style model needs content photos; evaluating one needs photos it never saw. Debian's
wallpaper packages and some PyPI packages ship real photographs under free licences. This module
knows, per package, which of its files are photos (:data:`SOURCES`: reviewed allow lists with a
reason for every file left out), finds them where they are installed (``dpkg -L`` for Debian
packages; the installed package or a downloaded wheel, read as a zip, for PyPI packages), and
:func:`gather_photos` copies them into one folder with a manifest:

* **licence and copyright** per photo: from the package's Debian ``copyright`` file (DEP-5), or
  from the reviewed entry where the package documents it elsewhere (docstrings, README);
* **duplicates** are dropped: identical pixels (a hash of the decoded image), and the same
  picture at several resolutions or encodings (a 32×32 thumbnail within 2 % and the same aspect
  ratio), keeping the largest;
* a **hold-out split** (:func:`choose_holdout`) for evaluation, never used for training.

``plasma-workspace-wallpapers`` is reserved for independent evaluation: it is refused by name
(:func:`check_allowed`) and no source may read it.
"""
from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import InputError

RESERVED_PACKAGES = {
    "plasma-workspace-wallpapers": "reserved for independent evaluation of ganstyle's models: never "
                                   "train, tune or pick photos on it",
}
DEFAULT_HOLDOUT = 8
HOLDOUT_MIN_SIDE = 1024
HOLDOUT_RULE = (f"N groups (a photo, or the frames of one sequence) whose photos have a long side of at least "
                f"{HOLDOUT_MIN_SIDE} px are held out: packages take turns in name order, within a package "
                f"groups go by ascending sha256 of the group's name")
THUMB = 32                 # side of the thumbnail compared for near-duplicates
NEAR_DUPLICATE = 0.02      # mean absolute difference of thumbnails (0..1) below which two are one
ASPECT_TOLERANCE = 0.02    # relative difference of aspect ratios within which two may be one


def check_allowed(package: str) -> None:
    """Refuse packages reserved for evaluation (:data:`RESERVED_PACKAGES`).

    >>> check_allowed("mate-backgrounds")
    >>> check_allowed("plasma-workspace-wallpapers")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    InputError: plasma-workspace-wallpapers is reserved for independent evaluation of ganstyle's models…
    """
    if package in RESERVED_PACKAGES:
        raise InputError(f"{package} is {RESERVED_PACKAGES[package]}")


# --------------------------------------------------------------------------- reviewed sources

@dataclass(frozen=True)
class Pick:
    """Files of a package that are photos: a glob over the file's path (Debian: the installed
    path; PyPI: the path inside the package, e.g. ``skimage/data/coffee.png``), matched as a
    path suffix. ``licence``/``copyright`` override the package's copyright file. ``group``
    names photos that must stay on one side of the hold-out split (frames of one sequence)."""
    pattern: str
    licence: str | None = None
    copyright: str | None = None
    group: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Source:
    """A package offering photos. ``skip`` maps globs of its image files that are not photos (or
    whose licence is unknown) to the reason; an image file matching neither ``picks`` nor ``skip``
    is reported as unreviewed and left out."""
    package: str
    kind: str                      # "debian" | "pypi"
    picks: tuple[Pick, ...]
    skip: dict[str, str] = field(default_factory=dict)
    module: str | None = None      # PyPI: the import name, when it differs from the package's

    @property
    def install_hint(self) -> str:
        if self.kind == "debian":
            return f"apt-get install {self.package}"
        return f"pip download --no-deps --only-binary=:all: -d {default_wheel_cache()} {self.package}"


def _frames(folder: str, names: Sequence[str], group: str, note: str) -> tuple[Pick, ...]:
    return tuple(Pick(f"{folder}/{name}", group=group, note=note) for name in names)


_VISP = "visp-images-data/ViSP-images"
_SEQ_NOTE = "real camera sequence; frames far apart only (neighbours are near-identical)"

SOURCES: tuple[Source, ...] = (
    Source("mate-backgrounds", "debian",
           picks=(Pick("backgrounds/mate/nature/*.jpg"),),
           skip={"backgrounds/mate/abstract/*": "paintings and graphics (Elephants is the benchmark "
                                                "style painting)",
                 "backgrounds/mate/desktop/*": "logos and graphics"}),
    Source("ukui-wallpapers", "debian", picks=(),
           skip={"backgrounds/*": "every UKUI wallpaper is a rendering or illustration, none a photo "
                                  "(reviewed 20.04.3)"}),
    Source("lomiri-wallpapers", "debian", picks=(),
           skip={"backgrounds/warty-final-ubuntu.png": "graphic",
                 "backgrounds/lomiri-default-background.png": "graphic (link to warty-final-ubuntu)"}),
    Source("lomiri-wallpapers-16.04", "debian",
           picks=tuple(Pick(f"backgrounds/{name}") for name in (
               "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg",
               "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
               "analogpattern_by_Peter_Nerlich.jpg", "free_by_Peter_Nerlich.jpg",
               "friends_by_Aitzol_Berasategi.jpg", "greentock_by_Peter_Nerlich.jpg",
               "life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg",
               "seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg")),
           skip={"backgrounds/umang_by_Abhishek_Mudgal.jpg": "colour gradient, not a photo"}),
    Source("lomiri-wallpapers-20.04", "debian",
           picks=(Pick("backgrounds/Kleiber_by_Lukas_Baubkus.jpg"),),
           skip={"backgrounds/Fossa_by_Jasper_Roks.jpg": "graphic",
                 "backgrounds/Infinite-Sea_by_Aury88.jpg": "photo composited with graphics",
                 "backgrounds/Painting-Colors_by__herobrine7gamer.jpg": "graphic"}),
    Source("visp-images-data", "debian",
           picks=(Pick(f"{_VISP}/Solvay/Solvay_conference_1927_Version2_*",
                       note="Solvay conference 1927 (photograph by Benjamin Couprie, public domain); "
                            "shipped at four sizes, the largest is kept"),
                  *_frames(f"{_VISP}/cube", ("image.0000.pgm", "image.0079.pgm"), "visp-cube", _SEQ_NOTE),
                  *_frames(f"{_VISP}/mbt/cube", ("image0000.pgm", "image0217.pgm"), "visp-mbt-cube", _SEQ_NOTE),
                  *_frames(f"{_VISP}/mbt-depth/castel/castel", ("image_0000.pgm", "image_0029.pgm"),
                           "visp-castel", _SEQ_NOTE),
                  *_frames(f"{_VISP}/mire-2", ("image.0001.pgm", "image.0501.pgm"), "visp-mire-2", _SEQ_NOTE)),
           skip={f"{_VISP}/faces/*": "another crop of the Solvay photograph",
                 f"{_VISP}/Klimt/*": "painting (Klimt, The Kiss)",
                 f"{_VISP}/Gaussian-filter/*": "blurred copies of the Klimt painting",
                 f"{_VISP}/warp/*": "warped copies of the Klimt painting",
                 f"{_VISP}/AprilTag/*": "fiducial-marker target",
                 f"{_VISP}/calibration/*": "calibration chart",
                 f"{_VISP}/circle/*": "synthetic shape", f"{_VISP}/ellipse/*": "synthetic shape",
                 f"{_VISP}/ellipse-1/*": "tracking target (white ellipse)",
                 f"{_VISP}/line/*": "tracking target (edge)", f"{_VISP}/mire/*": "synthetic target",
                 f"{_VISP}/mbt/cube.ppm": "annotated frame (drawn labels)",
                 f"{_VISP}/mbt-depth/castel/chateau.ppm": "annotated frame (drawn points)",
                 f"{_VISP}/mbt-depth/Castle-simu/*": "rendered (synthetic) sequence",
                 f"{_VISP}/cube/*": "other frames of a sequence", f"{_VISP}/mbt/cube/*": "other frames "
                 "of a sequence", f"{_VISP}/mbt-depth/castel/castel/*": "other frames of a sequence",
                 f"{_VISP}/mire-2/*": "other frames of a sequence"}),
    Source("scikit-image", "pypi", module="skimage",
           picks=(Pick("skimage/data/astronaut.png", "public domain", "NASA (Eileen Collins)"),
                  Pick("skimage/data/camera.png", "CC0-1.0", "Lav Varshney"),
                  Pick("skimage/data/chelsea.png", "CC0-1.0", "Stefan van der Walt"),
                  Pick("skimage/data/coffee.png", "CC0-1.0", "Rachel Michetti"),
                  Pick("skimage/data/rocket.jpg", "public domain", "SpaceX"),
                  Pick("skimage/data/coins.png", "no known copyright restrictions", "Brooklyn Museum"),
                  Pick("skimage/data/hubble_deep_field.jpg", "public domain", "NASA"),
                  Pick("skimage/data/brick.png", "CC0-1.0", "CC0Textures (perspective-corrected)"),
                  Pick("skimage/data/grass.png", "CC0-1.0", "linolafett (DeviantArt)"),
                  Pick("skimage/data/gravel.png", "CC0-1.0", "CC0Textures")),
           skip={"skimage/data/clock_motion.png": "deliberately motion-blurred",
                 "skimage/data/moon.png": "no licence stated",
                 "skimage/data/motorcycle_*.png": "Middlebury stereo pair: no licence stated",
                 "skimage/data/retina.jpg": "medical (fundus) image",
                 "skimage/data/ihc.png": "microscopy", "skimage/data/cell.png": "microscopy",
                 "skimage/data/microaneurysms.png": "medical crop",
                 "skimage/data/*.png": "graphics, scans and synthetic test images",
                 "skimage/data/motorcycle_disp.npz": "disparity map",
                 "skimage/data/multipage*.tif": "synthetic test images"}),
    Source("scikit-learn", "pypi", module="sklearn",
           picks=(Pick("sklearn/datasets/images/china.jpg", "CC-BY-2.0", "danielbuechele (Flickr)"),
                  Pick("sklearn/datasets/images/flower.jpg", "CC-BY-2.0", "vultilion (Flickr)"))),
    Source("matplotlib", "pypi",
           picks=(Pick("matplotlib/mpl-data/sample_data/grace_hopper.jpg", "public domain",
                       "US Navy (official portrait of Grace Hopper)", note="no notice in the wheel"),),
           skip={"matplotlib/mpl-data/sample_data/*.png": "clip art and logo",
                 "matplotlib/mpl-data/images/*": "toolbar icons",
                 "matplotlib/mpl-data/sample_data/*.npz": "data arrays, not images"}),
    Source("pywavelets", "pypi", module="pywt",
           picks=(Pick("pywt/data/ascent.npz", "public domain", "public-domain-image.com"),
                  Pick("pywt/data/camera.npz", "CC0-1.0", "Lav Varshney",
                       note="the same photo as scikit-image's camera")),
           skip={"pywt/data/aero.npz": "no source or licence stated",
                 "pywt/data/*.npz": "signals, not images",
                 "pywt/tests/*": "test data"}),
    Source("mahotas", "pypi",
           picks=(Pick("mahotas/demos/data/luispedro.jpg", "MIT (the package's licence)",
                       "Luis Pedro Coelho (the author's portrait)"),),
           skip={"mahotas/demos/data/lena.jpg": "Lena: a copyrighted magazine photograph",
                 "mahotas/demos/data/DepartmentStore.jpg": "a copyrighted illustration (Where's Wally)",
                 "mahotas/demos/data/nuclear.png": "microscopy",
                 "mahotas/tests/*": "test images"}),
)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".webp", ".tif", ".tiff", ".bmp", ".npz"}


def source_names() -> list[str]:
    return [s.package for s in SOURCES]


def _matches(path: str, pattern: str) -> bool:
    """Glob ``pattern`` matches ``path`` as a whole or as a suffix starting at a ``/``.

    >>> _matches("/usr/share/backgrounds/mate/nature/Dune.jpg", "backgrounds/mate/nature/*.jpg")
    True
    >>> _matches("/usr/share/backgrounds/mate/abstract/Dune.jpg", "backgrounds/mate/nature/*.jpg")
    False
    """
    return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, "*/" + pattern)


# --------------------------------------------------------------------------- Debian copyright

@dataclass(frozen=True)
class Notice:
    licence: str
    copyright: str


def parse_dep5(text: str) -> list[tuple[list[str], Notice]]:
    """Files paragraphs of a machine-readable Debian copyright file → ``[(globs, Notice)]``.

    >>> parse_dep5("Files: *\\nCopyright: 2020 A <a@b>\\nLicense: GPL-2+\\n")
    [(['*'], Notice(licence='GPL-2+', copyright='2020 A'))]
    """
    result = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, list[str]] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key].append(line.strip())
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = [value.strip()]
        if "files" not in fields or "license" not in fields:
            continue
        globs = " ".join(fields["files"]).split()
        holders = [re.sub(r"\s*<[^>]*>", "", h).strip(" ´") for h in fields.get("copyright", []) if h]
        result.append((globs, Notice(fields["license"][0], "; ".join(h for h in holders if h))))
    return result


def notice_for(path: str, paragraphs: list[tuple[list[str], Notice]]) -> Notice | None:
    """The notice of the last paragraph matching ``path`` (DEP-5: later paragraphs win). Source
    paths rarely equal installed paths, so a glob matches as a path suffix, or by its file name
    alone when its folder is laid out differently (``16.04/x.jpg`` installed as ``…/x.jpg``)."""
    found = None
    for globs, notice in paragraphs:
        for glob in globs:
            name = glob.rsplit("/", 1)[-1]
            if (glob == "*" or _matches(path, glob)
                    or ("/" in glob and name != "*" and fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], name))):
                found = notice
    return found


# --------------------------------------------------------------------------- locating packages

def debian_files(package: str) -> list[str] | None:
    """Files installed by a Debian package (``dpkg -L``), or None when it is not installed."""
    try:
        out = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    if out.returncode != 0:
        return None
    return [line for line in out.stdout.splitlines() if line.startswith("/")]


def debian_version(package: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                             text=True, check=False)
    except FileNotFoundError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def default_wheel_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ganstyle" / "photo-wheels"


@dataclass
class PackageFiles:
    """Where a package's files are: a folder (``root``, holding ``module/…``) or a wheel zip."""
    version: str
    where: str                                  # shown in the manifest's ``original`` column
    names: list[str]                            # paths relative to the root / members of the zip
    read: Callable[[str], bytes]
    copyright_text: str = ""


def installed_python_package(source: Source) -> PackageFiles | None:
    """The package as installed in this interpreter, or None."""
    import importlib.metadata
    import importlib.util

    module = source.module or source.package
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    pkg_dir = Path(next(iter(spec.submodule_search_locations)))
    root = pkg_dir.parent
    try:
        version = importlib.metadata.version(source.package)
    except importlib.metadata.PackageNotFoundError:
        version = ""
    names = sorted(p.relative_to(root).as_posix() for p in pkg_dir.rglob("*") if p.is_file())
    return PackageFiles(version, f"{root}/", names, lambda name: (root / name).read_bytes())


def wheel_package(source: Source, wheel_dirs: Iterable[Path]) -> PackageFiles | None:
    """The newest wheel of the package in ``wheel_dirs`` (read as a zip, never installed), or None."""
    stem = re.sub(r"[-_.]+", "_", source.package).lower()
    wheels = [w for d in wheel_dirs if Path(d).is_dir() for w in Path(d).glob("*.whl")
              if w.name.lower().startswith(stem + "-")]
    if not wheels:
        return None
    wheel = max(wheels, key=lambda w: _version_key(w.name.split("-")[1]))
    archive = zipfile.ZipFile(wheel)
    names = sorted(n for n in archive.namelist() if not n.endswith("/"))
    return PackageFiles(wheel.name.split("-")[1], f"{wheel}!", names, archive.read)


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.+-]", version))


def locate(source: Source, wheel_dirs: Sequence[Path]) -> PackageFiles | None:
    """Find a source's files: Debian through dpkg; PyPI installed first, then a cached wheel."""
    check_allowed(source.package)
    if source.kind == "pypi":
        return installed_python_package(source) or wheel_package(source, wheel_dirs)
    files = debian_files(source.package)
    if files is None:
        return None
    copyright_file = f"/usr/share/doc/{source.package}/copyright"
    text = ""
    for f in files:
        if f.endswith(copyright_file) and os.path.isfile(f):
            text = Path(f).read_text(errors="replace")
    names = sorted(f for f in files if os.path.isfile(f))
    return PackageFiles(debian_version(source.package), "", names, lambda name: Path(name).read_bytes(), text)


# --------------------------------------------------------------------------- photos

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


def collect(source: Source, files: PackageFiles, report: SourceReport) -> list[Photo]:
    """The reviewed photos among a located package's files; fills ``report``'s skipped and
    unreviewed lists."""
    notices = parse_dep5(files.copyright_text) if files.copyright_text else []
    photos = []
    for name in files.names:
        if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        pick = next((p for p in source.picks if _matches(name, p.pattern)), None)
        if pick is None:
            reason = next((r for g, r in source.skip.items() if _matches(name, g)), None)
            if reason is None:
                report.unreviewed.append(name)
            else:
                report.skipped[name] = reason
            continue
        notice = notice_for(name, notices)
        data = files.read(name)
        photos.append(Photo(
            package=source.package, version=files.version, kind=source.kind, original=files.where + name,
            licence=pick.licence or (notice.licence if notice else "unknown"),
            copyright=pick.copyright or (notice.copyright if notice else ""),
            note=pick.note, group=pick.group or f"{source.package}:{name}", data=data).measure())
    return photos


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


def find_photos(sources: Sequence[Source] = SOURCES, *, wheel_dirs: Sequence[Path] = (),
                holdout: int = DEFAULT_HOLDOUT) -> Corpus:
    """Locate every source, collect its reviewed photos, dedupe across all of them and choose the
    hold-out split. Missing packages are reported (with how to install them), not errors."""
    wheel_dirs = [Path(d) for d in wheel_dirs] or [default_wheel_cache()]
    photos: list[Photo] = []
    reports = []
    for source in sources:
        check_allowed(source.package)
        report = SourceReport(source.package, source.kind, "missing", hint=source.install_hint)
        reports.append(report)
        files = locate(source, wheel_dirs)
        if files is None:
            continue
        report.status, report.version, report.hint = "found", files.version, ""
        photos.extend(collect(source, files, report))
    kept = dedupe(photos)
    choose_holdout(kept, holdout)
    _name_files(kept)
    for report in reports:
        mine = [p for p in kept if p.package == report.package]
        report.photos = len(mine)
        report.train = sum(p.split == "train" for p in mine)
        report.holdout = report.photos - report.train
        report.duplicates = sum(p.package == report.package for p in photos) - report.photos
    return Corpus(kept, reports)


def _name_files(photos: list[Photo]) -> None:
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


# --------------------------------------------------------------------------- fetching

def install_commands(missing: Sequence[Source], wheel_dir: Path) -> list[list[str]]:
    """Commands that fetch the missing sources: one ``apt-get install`` for the Debian packages
    (waiting up to 10 minutes for another apt/dpkg to finish) and one ``pip download --no-deps``
    into ``wheel_dir`` for the PyPI ones (wheels are read as zips, never installed)."""
    for s in missing:
        check_allowed(s.package)
    debs = [s.package for s in missing if s.kind == "debian"]
    wheels = [s.package for s in missing if s.kind == "pypi"]
    commands = []
    if debs:
        commands.append(["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends",
                         *debs])
    if wheels:
        commands.append([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                         "-d", str(wheel_dir), *wheels])
    return commands
