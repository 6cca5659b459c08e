#!/usr/bin/env python3
"""Build a corpus of style images (paintings, illustrations, drawings, abstracts, textures, maps) from
Debian packages installed on this machine, split into a training set and a held-out evaluation set.

Usage::

    python scripts/style_corpus.py OUT_DIR

writes::

    OUT_DIR/train/<package>/<file>       images to train on
    OUT_DIR/holdout/<package>/<file>     images never to train on (evaluation of unseen styles)
    OUT_DIR/manifest.csv, manifest.json  one row per image (columns: MANIFEST_COLUMNS)
    OUT_DIR/holdout_sheet.jpg            contact sheet of the held-out images, 160 px high

Running it again replaces those; nothing else in OUT_DIR is touched. It needs only Python 3.10+,
Pillow and numpy, plus ``dpkg`` to list the packages' files and versions.

Sources (SOURCES has the exact patterns, and the licence and author of each file as the package's
/usr/share/doc/PKG/copyright gives them):

    package              what is taken                                          kind
    wesnoth-1.16-data    core story paintings, the add-on manager painting      painting
                         the drawn map of the Great Continent                    map
    fillets-ng-data      level backgrounds                                       painting
                         level posters                                           illustration
    hedgewars-data       theme skies                                             illustration
                         theme land textures                                     texture
    tuxpaint-data        line-art starters, on white                             drawing
    freeciv-data         intro art                                               illustration
                         the armillary sphere, the world map                     drawing, map
    flare-game           menu backgrounds, cutscenes                             painting
    gnome-backgrounds    wallpapers, one of each light/dark pair                 abstract
    desktop-base         theme backgrounds, the largest raster of each theme     abstract
    mate-backgrounds     abstract/ only: wallpapers on their gradient            abstract
                         Elephants, the largest of its three sizes               illustration
    krita-data           patterns that do not look photographed                  texture

What is taken:

* only the files a package's ``include`` patterns name, which also give the image's kind;
  ``exclude`` patterns drop photos, UI elements, sprites and the like that the include would catch;
* only images whose short side is at least MIN_SHORT_SIDE px, that are opaque (at most
  MAX_TRANSPARENT_FRACTION of the pixels transparent: cut-out sprites, portraits and overlay layers
  go) and not near-uniform (every RGB channel's std below MIN_CHANNEL_STD in [0, 1]);
* where transparency is the paper rather than a cut-out (Tux Paint's line-art colouring pages, MATE's
  wallpapers drawn over a gradient) the image is flattened onto that backdrop and stored as PNG:
  the only conversion made; everything else is copied byte for byte, never resized;
* one image per artwork: a package's ``artwork`` pattern groups its variants (the same wallpaper at
  several sizes), and across all packages two images are one artwork when their perceptual hashes
  (16x16 greyscale thumbnails, normalised to zero mean and unit variance) correlate at least
  MIN_HASH_CORRELATION and their aspect ratios agree within MAX_ASPECT_DIFFERENCE: the same picture at
  another size, in another format or recoloured (Fillets and Hedgewars reuse levels and textures in
  other colours); of each artwork the largest image is kept;
* at most PER_PACKAGE_CAP images a package, chosen evenly spaced over the path-sorted list.

The split: over the final list sorted by package then path, every HOLDOUT_EVERY-th image is held out,
except the images ALWAYS_TRAIN matches (Wesnoth's core story paintings, already used for training):
a slot falling on one of those passes to the next image that may be held out (wrapping round to the
start of the list), so that a list of N images always holds out N // HOLDOUT_EVERY.

plasma-workspace-wallpapers is reserved for independent evaluation: it is never listed or read.
"""
from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

Image.MAX_IMAGE_PIXELS = None   # the packages' wallpapers run to 18 Mpx; they are trusted system files

MIN_SHORT_SIDE = 256             # px
MIN_CHANNEL_STD = 0.03           # below this in every RGB channel (values in [0, 1]) an image is near-uniform
OPAQUE_ALPHA = 250               # alpha at or above which a pixel counts as opaque
MAX_TRANSPARENT_FRACTION = 0.02  # more non-opaque pixels than this: a sprite, cut-out or overlay layer
STATS_SIDE = 512                 # about the long side of the reduced copy the statistics and hash use
HASH_SIDE = 16                   # perceptual hash: a HASH_SIDE x HASH_SIDE greyscale thumbnail
MIN_HASH_CORRELATION = 0.97      # from here two hashes show one artwork (seen: same art >= 0.98, others <= 0.95)
MAX_ASPECT_DIFFERENCE = 0.05     # |log| of the ratio of two aspect ratios up to which they may be one artwork
PER_PACKAGE_CAP = 40
HOLDOUT_EVERY = 7
MIN_HOLDOUT = 22
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
ALWAYS_TRAIN = re.compile(r"/wesnoth/1\.16/data/core/images/story/")
RESERVED_PACKAGES = {"plasma-workspace-wallpapers": "reserved for independent evaluation: never read"}
MATE_ABSTRACT_XML = "/usr/share/mate-background-properties/mate-abstract.xml"
MANIFEST_COLUMNS = ("file", "split", "package", "version", "kind", "licence", "author", "original_path",
                    "width", "height", "sha256", "note")
SHEET_HEIGHT = 160               # px, the contact sheet's thumbnails
SHEET_WIDTH = 1600               # px, the contact sheet's rows

WESNOTH_AUTHOR = "The Battle for Wesnoth Project (David White et al.; artists credited in data/core/about.cfg)"
HEDGEWARS_AUTHOR = "Andrey Korotaev, Igor Ulyanov and the Hedgewars Project"


@dataclass(frozen=True)
class Source:
    """Where a package's style images are and what they are.

    include: (regex, kind) pairs searched in the installed path; the first that matches gives the kind.
    credits: (regex, licence, author) triples; the first that matches applies ("" matches every path).
    exclude: regex of paths never taken, though an include matches them.
    artwork: regex whose group 1 names an artwork; of the files naming the same one the largest is kept.
    backdrop: what shows through transparent pixels: "" (nothing: they make a sprite), "white" (paper)
        or "mate-xml" (the gradient MATE's wallpaper list draws under the image).
    """
    package: str
    root: str
    include: tuple[tuple[str, str], ...]
    credits: tuple[tuple[str, str, str], ...]
    exclude: str = r"(?!)"
    artwork: str = ""
    backdrop: str = ""


SOURCES = (
    Source(
        package="wesnoth-1.16-data", root="/usr/share/games/wesnoth/1.16",
        include=((r"/data/core/images/story/[^/]+\.jpg$", "painting"),
                 (r"/images/dialogs/addon_manager_bg\.jpg$", "painting"),
                 (r"/data/core/images/maps/wesnoth\.png$", "map")),
        # maps/background.jpg is a photo of wooden planks; portraits and unit images are cut-outs
        credits=(("", "GPL-2+", WESNOTH_AUTHOR),)),
    Source(
        package="fillets-ng-data", root="/usr/share/games/fillets-ng/images",
        include=((r"/images/[^/]+/poster\.png$", "illustration"),
                 (r"/images/[^/]+/[^/]+\.png$", "painting")),   # level backgrounds; wall layers are cut-outs
        # menu: UI; demo_briefcase: animation frames; fdto-p: an underwater photo; win-p: a sky photo;
        # key/background: computed noise
        exclude=r"/images/(menu|demo_briefcase)/|/fdto/fdto-p\.png$|/windoze/win-p\.png$|/key/background\.png$",
        credits=(("", "GPL-2", "Ivo Danihelka, Pavel Danihelka, ALTAR interactive (Fish Fillets NG)"),)),
    Source(
        package="hedgewars-data", root="/usr/share/games/hedgewars/Data",
        include=((r"/Themes/[^/]+/Sky\.png$", "illustration"),
                 (r"/Themes/[^/]+/LandTex\.png$", "texture")),
        # Maps/*/map.png, Forts and horizont.png are terrain cut out over transparency
        credits=((r"/Themes/Olympics/", "GFDL-1.3", "Guillaume Englert"),
                 (r"/Themes/Cave/", "GFDL-1.3", "Guillaume Englert"),
                 (r"/Themes/Cheese/", "GFDL-1.3", "after Anthony Carré's Wormux map 'cheese'"),
                 ("", "GPL-2", HEDGEWARS_AUTHOR))),
    Source(
        package="tuxpaint-data", root="/usr/share/tuxpaint/starters",
        include=((r"/tuxpaint/starters/[^/]+\.png$", "drawing"),),   # line-art colouring pages
        # templates/ are all photos; frames, grids, jigsaws and outline maps are not artwork;
        # reef and skyline-sf-dusk (and their -back layers) are photos
        exclude=r"/starters/(frame_|grid_|jigsaw|worldmap|chessboard|reef|skyline)|-back\.",
        credits=(("", "GPL-2+", "Bill Kendrick and Tux Paint contributors"),),
        backdrop="white"),
    Source(
        package="freeciv-data", root="/usr/share/games/freeciv",
        include=((r"/misc/intro\.png$", "illustration"),
                 (r"/themes/gui-sdl2/human/intro\.png$", "illustration"),   # the same art, framed and larger
                 (r"/themes/gui-sdl2/human/options_bg\.png$", "drawing"),
                 (r"/themes/gui-sdl2/human/world\.png$", "map")),
        # tilesets are sprite sheets; gui-qt/NightStalker/pattern.png is a photo
        artwork=r"/(intro)\.png$",
        credits=(("", "GPL-2+", "The Freeciv project"),)),
    Source(
        package="flare-game", root="/usr/share/games/flare/mods",
        include=((r"/images/menus/backgrounds/[^/]+\.png$", "painting"),
                 (r"/images/cutscenes/[^/]+\.png$", "painting")),
        credits=(("", "CC-BY-SA-3.0+", "Clint Bellanger and Flare contributors"),)),
    Source(
        package="gnome-backgrounds", root="/usr/share/backgrounds/gnome",
        include=((r"/backgrounds/gnome/[^/]+\.webp$", "abstract"),),   # the .svg ones cannot be read here
        exclude=r"/vnc-[dl]\.webp$",                                    # a plain colour for remote desktops
        artwork=r"/([a-z]+)-[dl]\.webp$",                               # light and dark variant of one artwork
        # debian/copyright credits adwaita*, the package's AUTHORS file the others but licorice and truchet
        credits=((r"/(licorice|truchet)-", "GPL-2+ (package notice; not in AUTHORS)", "not credited in AUTHORS"),
                 ("", "CC-BY-SA-3.0", "Jakub Steiner"))),
    Source(
        package="desktop-base", root="/usr/share",
        include=((r"/desktop-base/[a-z]+-theme/grub/grub-(16x9|4x3)\.png$", "abstract"),
                 (r"/plymouth/themes/[a-z]+/(plymouth_)?background[^/]*\.png$", "abstract")),
        # wallpaper/*.svg cannot be read here; login previews and the plasma preview are screenshots
        artwork=r"/(?:desktop-base|plymouth/themes)/([a-z]+?)(?:-theme)?/",   # one image per theme
        credits=((r"spacefun", "GPL-2", "Valessio Brito"),
                 (r"joy", "GPL-2+", "Adrien Aubourg"),
                 (r"futureprototype", "GPL-2+", "Alex Makas"),
                 (r"(lines|softwaves|moonlight|homeworld|emerald)", "GPL-2+", "Juliette Taka Belin"))),
    Source(
        package="mate-backgrounds", root="/usr/share/backgrounds/mate/abstract",
        include=((r"/backgrounds/mate/abstract/Elephants[^/]*\.jpg$", "illustration"),
                 (r"/backgrounds/mate/abstract/[^/]+\.png$", "abstract")),
        exclude=r"/backgrounds/mate/(nature|desktop)/",   # nature/ is photos
        artwork=r"/(Elephants)[^/]*\.jpg$",               # one painting at three sizes
        credits=((r"/(Silk|Spring|Waves)\.png$", "GPL-2+", "Patryk Zawadzki"),
                 (r"/(Flow|Gulp)\.png$", "GPL-2+", "Daniel Galleguillos, Hylke Bons"),
                 (r"/Elephants", "GPL-2+", "Wyng Stancikaite"),
                 (r"/Arc-Colors", "GPL-2+", "no copyright notice (gnome-colors)")),
        backdrop="mate-xml"),
    Source(
        package="krita-data", root="/usr/share/krita/patterns",
        include=((r"/krita/patterns/[^/]+\.png$", "texture"),),
        # these look photographed (rock, bark, wood, plants, cracked mud, melted surface, sand)
        exclude=r"/patterns/[^/]*(rock|woody|bark|vegetal|crackle|melt|Sand_fine)",
        credits=(("", "GPL/LGPL (debian/copyright Files: *)", "Krita contributors (no per-file credit)"),)),
)


@dataclass
class Candidate:
    """An image file of a package, with what the selection needs to know of it."""
    source: Source
    path: str
    kind: str
    width: int = 0
    height: int = 0
    max_channel_std: float = 0.0
    transparent_fraction: float = 0.0
    flattened: bool = False
    phash: np.ndarray | None = field(default=None, repr=False)
    split: str = "train"

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def sort_key(self) -> tuple[str, str]:
        return self.source.package, self.path


# --- packages ---------------------------------------------------------------------------------------

def refuse_reserved(package: str) -> None:
    if package in RESERVED_PACKAGES:
        raise SystemExit(f"{package}: {RESERVED_PACKAGES[package]}")


def installed_files(package: str) -> list[str]:
    """The paths ``dpkg -L`` lists for an installed package."""
    refuse_reserved(package)
    listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if line.startswith("/")]


def package_version(package: str) -> str:
    refuse_reserved(package)
    return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                          capture_output=True, text=True, check=True).stdout.strip()


def credit_for(source: Source, path: str) -> tuple[str, str]:
    """(licence, author) of a file: the first of the source's credits whose pattern matches."""
    for pattern, licence, author in source.credits:
        if re.search(pattern, path):
            return licence, author
    raise ValueError(f"{source.package}: no credit entry matches {path}")


def kind_for(source: Source, path: str) -> str | None:
    """The kind the first matching include gives a path, or None if the source does not take it."""
    if re.search(source.exclude, path):
        return None
    return next((kind for pattern, kind in source.include if re.search(pattern, path)), None)


def find_candidates(source: Source) -> list[Candidate]:
    """The package's files that its include patterns take and that are large enough."""
    candidates = []
    for path in installed_files(source.package):
        file = Path(path)
        if file.suffix.lower() not in IMAGE_SUFFIXES or file.is_symlink() or not file.is_file():
            continue
        kind = kind_for(source, path)
        if kind is None:
            continue
        with Image.open(file) as im:   # reads the header only
            width, height = im.size
        if min(width, height) >= MIN_SHORT_SIDE:
            candidates.append(Candidate(source, path, kind, width, height))
    return candidates


# --- pixels -----------------------------------------------------------------------------------------

def has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)


@functools.cache
def mate_gradients() -> dict[str, tuple[str, str, str]]:
    """MATE's abstract wallpaper list: file → (shade type, primary colour, secondary colour)."""
    gradients = {}
    for wallpaper in ET.parse(MATE_ABSTRACT_XML).getroot().iter("wallpaper"):
        name = wallpaper.findtext("filename")
        if name:
            gradients[name] = (wallpaper.findtext("shade_type") or "solid",
                               wallpaper.findtext("pcolor") or "#000000", wallpaper.findtext("scolor") or "#000000")
    return gradients


def hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float32)


def mate_backdrop(path: str, size: tuple[int, int]) -> Image.Image:
    """The gradient MATE paints under a wallpaper: the primary colour at the top (vertical gradient)
    or left (horizontal) edge, the secondary at the opposite one."""
    shade, primary, secondary = mate_gradients().get(path, ("solid", "#000000", "#000000"))
    width, height = size
    if shade == "vertical-gradient":
        t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    elif shade == "horizontal-gradient":
        t = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    else:
        t = np.zeros((1, 1, 1), dtype=np.float32)
    rgb = np.broadcast_to((1 - t) * hex_rgb(primary) + t * hex_rgb(secondary), (height, width, 3))
    return Image.fromarray((rgb + 0.5).astype(np.uint8), "RGB")


def flatten(im: Image.Image, source: Source, path: str) -> Image.Image:
    """The image composited over the source's backdrop, as RGB."""
    rgba = im.convert("RGBA")
    if source.backdrop == "white":
        backdrop = Image.new("RGB", rgba.size, "white")
    elif source.backdrop == "mate-xml":
        backdrop = mate_backdrop(path, rgba.size)
    else:
        raise ValueError(f"{source.package}: unknown backdrop {source.backdrop!r}")
    backdrop.paste(rgba, (0, 0), rgba)
    return backdrop


def open_as_stored(candidate: Candidate, reduce_to: int = 0) -> tuple[Image.Image, bool]:
    """(the image as the corpus stores it, whether it was flattened): flattened onto the backdrop
    where the source has one and the file has alpha, else as decoded. ``reduce_to``: decode smaller
    where the format allows (JPEG) and shrink to about that long side, for statistics."""
    with Image.open(candidate.path) as im:
        if reduce_to:
            im.draft("RGB", (reduce_to, reduce_to))
        im.load()
        if reduce_to and max(im.size) >= 2 * reduce_to:
            im = im.convert("RGBA" if has_alpha(im) else "RGB").reduce(max(im.size) // reduce_to)
        if candidate.source.backdrop and has_alpha(im):
            return flatten(im, candidate.source, candidate.path), True
        return im.copy(), False


def measure(candidate: Candidate) -> None:
    """Fill in the candidate's transparency, channel std and perceptual hash (from a reduced copy)."""
    im, candidate.flattened = open_as_stored(candidate, reduce_to=STATS_SIDE)
    rgba = np.asarray(im.convert("RGBA"))
    candidate.transparent_fraction = float((rgba[..., 3] < OPAQUE_ALPHA).mean()) if has_alpha(im) else 0.0
    rgb = rgba[..., :3].reshape(-1, 3).astype(np.float32) / 255.0
    candidate.max_channel_std = float(rgb.std(axis=0).max())
    candidate.phash = perceptual_hash(Image.fromarray(rgba[..., :3], "RGB"))


def perceptual_hash(im: Image.Image) -> np.ndarray:
    """A HASH_SIDE x HASH_SIDE greyscale thumbnail, flattened, at zero mean and unit variance."""
    grey = np.asarray(im.convert("L").resize((HASH_SIDE, HASH_SIDE), Image.BOX), dtype=np.float32).ravel()
    return (grey - grey.mean()) / max(float(grey.std()), 1e-6)


def same_artwork(a: Candidate, b: Candidate) -> bool:
    """Whether two images show one artwork: their perceptual hashes correlate and their shapes agree."""
    aspect_difference = abs(np.log((a.width / a.height) / (b.width / b.height)))
    correlation = float(np.mean(a.phash * b.phash))
    return aspect_difference <= MAX_ASPECT_DIFFERENCE and correlation >= MIN_HASH_CORRELATION


def pixel_sha256(im: Image.Image) -> str:
    """sha256 of the decoded pixels (mode, size and bytes), as ganstyle's photo corpus computes it."""
    digest = hashlib.sha256(f"{im.mode}{im.size}".encode())
    digest.update(im.tobytes())
    return digest.hexdigest()


# --- selection --------------------------------------------------------------------------------------

def rejection_reason(candidate: Candidate) -> str | None:
    if min(candidate.width, candidate.height) < MIN_SHORT_SIDE:
        return "small"
    if candidate.transparent_fraction > MAX_TRANSPARENT_FRACTION:
        return "transparent"
    if candidate.max_channel_std < MIN_CHANNEL_STD:
        return "near-uniform"
    return None


def larger_first(candidates: list[Candidate]) -> list[Candidate]:
    """Largest first; between equals the more contrasted, then the first by package and path."""
    return sorted(candidates, key=lambda c: (-c.pixels, -round(c.max_channel_std, 4), c.sort_key))


Pairs = list[tuple[Candidate, Candidate]]   # (dropped, the one kept in its place)


def keep_largest_per_artwork(candidates: list[Candidate]) -> tuple[list[Candidate], Pairs]:
    """One file per artwork a source's ``artwork`` pattern names; files it does not match stand alone."""
    kept, dropped, seen = [], [], {}
    for candidate in larger_first(candidates):
        match = re.search(candidate.source.artwork, candidate.path) if candidate.source.artwork else None
        key = (candidate.source.package, match.group(1)) if match else (candidate.source.package, candidate.path)
        if key in seen:
            dropped.append((candidate, seen[key]))
        else:
            seen[key] = candidate
            kept.append(candidate)
    return sorted(kept, key=lambda c: c.sort_key), dropped


def drop_perceptual_duplicates(candidates: list[Candidate]) -> tuple[list[Candidate], Pairs]:
    """Of the images that show one artwork (:func:`same_artwork`), keep the largest."""
    kept, dropped = [], []
    for candidate in larger_first(candidates):
        twin = next((k for k in kept if same_artwork(k, candidate)), None)
        if twin is None:
            kept.append(candidate)
        else:
            dropped.append((candidate, twin))
    return sorted(kept, key=lambda c: c.sort_key), dropped


def pick_evenly(candidates: list[Candidate], cap: int) -> list[Candidate]:
    """At most ``cap`` of a path-sorted list, evenly spaced over it (first and last included)."""
    if len(candidates) <= cap:
        return candidates
    return [candidates[round(i * (len(candidates) - 1) / (cap - 1))] for i in range(cap)]


def assign_splits(candidates: list[Candidate]) -> None:
    """Every HOLDOUT_EVERY-th image of the list goes to holdout; a slot that falls on an image that
    must stay in training passes to the next image that may be held out, wrapping round to the start
    of the list when the end comes first (Wesnoth's story paintings sort last)."""
    def may_hold_out(candidate: Candidate) -> bool:
        return candidate.split == "train" and not ALWAYS_TRAIN.search(candidate.path)

    open_slots = 0
    for position, candidate in enumerate(candidates, start=1):
        open_slots += position % HOLDOUT_EVERY == 0
        if open_slots and may_hold_out(candidate):
            candidate.split = "holdout"
            open_slots -= 1
    for candidate in candidates:
        if open_slots and may_hold_out(candidate):
            candidate.split = "holdout"
            open_slots -= 1


# --- output -----------------------------------------------------------------------------------------

def output_name(candidate: Candidate) -> str:
    """The path below the source's root, folders joined by "__"; PNG where the image was flattened."""
    relative = Path(candidate.path).relative_to(candidate.source.root)
    name = "__".join(relative.parts)
    return str(Path(name).with_suffix(".png")) if candidate.flattened else name


def store(candidate: Candidate, target: Path) -> str:
    """Write the image to target (a byte copy, or the flattened PNG); return its pixels' sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    im, flattened = open_as_stored(candidate)
    if flattened:
        im.save(target, format="PNG", optimize=False, compress_level=6)
    else:
        shutil.copyfile(candidate.path, target)
    return pixel_sha256(im)


def write_corpus(candidates: list[Candidate], out: Path, versions: dict[str, str]) -> list[dict]:
    """Replace OUT_DIR's train/, holdout/ and manifests with the chosen images; return the rows."""
    for folder in ("train", "holdout"):
        shutil.rmtree(out / folder, ignore_errors=True)
    rows = []
    for candidate in candidates:
        file = f"{candidate.split}/{candidate.source.package}/{output_name(candidate)}"
        digest = store(candidate, out / file)
        licence, author = credit_for(candidate.source, candidate.path)
        note = (f"flattened onto the {candidate.source.backdrop} backdrop, stored as PNG"
                if candidate.flattened else "")
        rows.append({"file": file, "split": candidate.split, "package": candidate.source.package,
                     "version": versions[candidate.source.package], "kind": candidate.kind, "licence": licence,
                     "author": author, "original_path": candidate.path, "width": candidate.width,
                     "height": candidate.height, "sha256": digest, "note": note})
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (out / "manifest.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return rows


def write_contact_sheet(files: list[Path], target: Path, height: int = SHEET_HEIGHT, width: int = SHEET_WIDTH) -> None:
    """Thumbnails ``height`` px high, packed left to right in rows ``width`` px wide, as JPEG."""
    gap = 4
    thumbs = []
    for file in files:
        with Image.open(file) as im:
            im.draft("RGB", (im.width * height // im.height, height))
            im = im.convert("RGB")
            thumbs.append(im.resize((min(width, max(1, round(im.width * height / im.height))), height), Image.LANCZOS))
    rows, row, used = [], [], 0
    for thumb in thumbs:
        if row and used + thumb.width > width:
            rows.append(row)
            row, used = [], 0
        row.append(thumb)
        used += thumb.width + gap
    rows.append(row)
    sheet = Image.new("RGB", (width, len(rows) * (height + gap)), (40, 40, 40))
    for r, row in enumerate(rows):
        x = 0
        for thumb in row:
            sheet.paste(thumb, (x, r * (height + gap)))
            x += thumb.width + gap
    sheet.save(target, quality=88)


def print_counts(rows: list[dict]) -> None:
    for column in ("package", "kind"):
        counts = Counter((row[column], row["split"]) for row in rows)
        names = sorted({row[column] for row in rows})
        print(f"\n{column:<20} {'train':>6} {'holdout':>8} {'total':>6}")
        for name in names:
            train, holdout = counts[(name, "train")], counts[(name, "holdout")]
            print(f"{name:<20} {train:>6} {holdout:>8} {train + holdout:>6}")
    splits = Counter(row["split"] for row in rows)
    print(f"\n{'all':<20} {splits['train']:>6} {splits['holdout']:>8} {len(rows):>6}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path, help="folder to write train/, holdout/ and the manifests into")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every rejected or duplicate file")
    args = parser.parse_args(argv)

    chosen, versions = [], {}
    for source in SOURCES:
        versions[source.package] = package_version(source.package)
        candidates = find_candidates(source)
        usable = []
        for candidate in candidates:
            measure(candidate)
            reason = rejection_reason(candidate)
            if reason is None:
                usable.append(candidate)
            elif args.verbose:
                print(f"  rejected ({reason}): {candidate.path}")
        usable, variants = keep_largest_per_artwork(usable)
        print(f"{source.package}: {len(candidates)} candidates, {len(usable)} usable artworks, "
              f"smaller variants dropped: {len(variants)}")
        if args.verbose:
            for small, large in variants:
                print(f"  variant of {large.path}: {small.path}")
        chosen.extend(usable)

    chosen, duplicates = drop_perceptual_duplicates(chosen)
    print(f"perceptual duplicates dropped: {len(duplicates)}")
    for duplicate, original in duplicates:
        print(f"  {duplicate.path}  =  {original.path}")
    capped = []
    for package in sorted({c.source.package for c in chosen}):
        capped.extend(pick_evenly([c for c in chosen if c.source.package == package], PER_PACKAGE_CAP))
    assign_splits(capped)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = write_corpus(capped, args.out_dir, versions)
    holdout = [args.out_dir / row["file"] for row in rows if row["split"] == "holdout"]
    write_contact_sheet(holdout, args.out_dir / "holdout_sheet.jpg")
    print_counts(rows)
    print(f"\nwrote {len(rows)} images, {args.out_dir / 'manifest.csv'} and {args.out_dir / 'holdout_sheet.jpg'}")
    if len(holdout) < MIN_HOLDOUT:
        print(f"error: only {len(holdout)} held-out images, fewer than {MIN_HOLDOUT}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
