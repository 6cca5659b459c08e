"""core.photo_sources on small fake package trees: Debian packages as files under tmp_path with a
faked ``dpkg -L`` listing, PyPI packages as wheel zips."""
from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganstyle.core import photo_sources as ps
from ganstyle.core.errors import InputError

MATE_COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: MATE Backgrounds

Files: *
Copyright: *No copyright*
License: GPL-2+

Files: nature/Aqua.jpg
       nature/Dune.jpg
Copyright: 2008, Charles Barbin <barbinch@free.fr>
License: GPL-2+

Files: desktop/Ubuntu-Mate-*-no-logo.png
Copyright: 2014 Goce Mitevski
License: CC-BY-SA-4.0
"""


def photo_array(seed: int, h: int = 48, w: int = 64) -> np.ndarray:
    """A smooth random 'photo' (RGB uint8): distinct seeds give clearly different pictures."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))


def write_image(path: Path, array: np.ndarray, **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **save)
    return path


@pytest.fixture
def fake_debian(tmp_path, monkeypatch):
    """mate-backgrounds installed under tmp_path; every other Debian package missing."""
    root = tmp_path / "root"
    base = root / "usr/share/backgrounds/mate"
    files = [
        write_image(base / "nature/Aqua.jpg", photo_array(1, 64, 96), quality=95),
        write_image(base / "nature/Dune.jpg", photo_array(2, 60, 96), quality=95),
        # the same picture as Dune at half size: a near-duplicate, the larger one stays
        write_image(base / "nature/Dune_small.jpg",
                    np.asarray(Image.fromarray(photo_array(2, 60, 96)).resize((48, 30))), quality=95),
        # identical pixels in another file (PNG bytes under a .jpg name)
        write_image(base / "nature/Aqua_copy.jpg", np.asarray(Image.open(base / "nature/Aqua.jpg")), format="PNG"),
        write_image(base / "abstract/Elephants.jpg", photo_array(3)),
        write_image(base / "desktop/Ubuntu-Mate-Cold-no-logo.png", photo_array(4)),
    ]
    copyright_file = root / "usr/share/doc/mate-backgrounds/copyright"
    copyright_file.parent.mkdir(parents=True)
    copyright_file.write_text(MATE_COPYRIGHT)
    listing = {"mate-backgrounds": [str(root / "usr"), *map(str, files), str(copyright_file)]}
    monkeypatch.setattr(ps, "debian_files", lambda package: listing.get(package))
    monkeypatch.setattr(ps, "debian_version", lambda package: "1.26.0-1" if package in listing else "")
    return root


@pytest.fixture
def fake_wheels(tmp_path, monkeypatch):
    """A scikit-image wheel with two photos and a logo; nothing importable."""
    monkeypatch.setattr(ps, "installed_python_package", lambda source: None)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "scikit_image-0.26.0-cp311-cp311-linux_x86_64.whl", "w") as z:
        for name, seed in (("coffee.png", 5), ("chelsea.png", 6), ("logo.png", 7)):
            buf = io.BytesIO()
            Image.fromarray(photo_array(seed)).save(buf, format="PNG")
            z.writestr(f"skimage/data/{name}", buf.getvalue())
        z.writestr("skimage/__init__.py", "")
    return wheels


def sources(*names):
    return [s for s in ps.SOURCES if s.package in names]


def test_debian_photos_licences_and_dedupe(fake_debian, tmp_path):
    corpus = ps.find_photos(sources("mate-backgrounds"), wheel_dirs=[tmp_path / "none"], holdout=0)
    by_name = {Path(p.original).name: p for p in corpus.photos}
    assert sorted(by_name) == ["Aqua.jpg", "Dune.jpg"]           # abstract/ and desktop/ skipped
    assert by_name["Aqua.jpg"].licence == "GPL-2+"
    assert by_name["Aqua.jpg"].copyright == "2008, Charles Barbin"  # e-mail dropped, last paragraph wins
    assert [Path(d).name for d in by_name["Aqua.jpg"].duplicates] == ["Aqua_copy.jpg"]
    assert [Path(d).name for d in by_name["Dune.jpg"].duplicates] == ["Dune_small.jpg"]
    (report,) = corpus.reports
    assert (report.status, report.photos, report.duplicates, report.version) == ("found", 2, 2, "1.26.0-1")
    assert len(report.skipped) == 2 and not report.unreviewed


def test_wheel_photos_read_from_the_zip(fake_wheels):
    corpus = ps.find_photos(sources("scikit-image"), wheel_dirs=[fake_wheels], holdout=0)
    photos = {p.member: p for p in corpus.photos}
    assert sorted(photos) == ["skimage/data/chelsea.png", "skimage/data/coffee.png"]
    coffee = photos["skimage/data/coffee.png"]
    assert (coffee.licence, coffee.copyright, coffee.version) == ("CC0-1.0", "Rachel Michetti", "0.26.0")
    assert coffee.original.endswith(".whl!skimage/data/coffee.png")
    assert "skimage/data/logo.png" in corpus.reports[0].skipped


def test_missing_package_says_how_to_install(fake_debian, tmp_path):
    corpus = ps.find_photos(sources("ukui-wallpapers", "scikit-learn"), wheel_dirs=[tmp_path / "none"])
    hints = {r.package: (r.status, r.hint) for r in corpus.reports}
    assert hints["ukui-wallpapers"] == ("missing", "apt-get install ukui-wallpapers")
    status, hint = hints["scikit-learn"]
    assert status == "missing" and hint.startswith("pip download --no-deps") and hint.endswith("scikit-learn")
    assert corpus.photos == []


def test_plasma_is_refused_everywhere(tmp_path):
    plasma = ps.Source("plasma-workspace-wallpapers", "debian", picks=(ps.Pick("*.jpg"),))
    with pytest.raises(InputError, match="reserved for independent evaluation"):
        ps.find_photos([plasma], wheel_dirs=[tmp_path])
    with pytest.raises(InputError, match="reserved"):
        ps.install_commands([plasma], tmp_path)
    assert "plasma-workspace-wallpapers" not in ps.source_names()


def test_holdout_is_deterministic_and_keeps_sequences_together():
    def photo(package, name, group=None, side=2048):
        return ps.Photo(package, "1", "debian", f"/x/{name}", "GPL", "", "", group or f"{package}:{name}",
                        b"", width=side, height=side // 2)

    photos = [photo("a", f"{i}.jpg") for i in range(5)] + [photo("b", "f1.pgm", "seq"), photo("b", "f2.pgm", "seq")]
    photos.append(photo("c", "tiny.jpg", side=300))             # too small to hold out
    ps.choose_holdout(photos, 3)
    held = {p.original for p in photos if p.split == "holdout"}
    assert {"/x/f1.pgm", "/x/f2.pgm"} <= held                    # the sequence goes as a whole
    assert "/x/tiny.jpg" not in held
    assert len({p.group for p in photos if p.split == "holdout"}) == 3
    again = list(reversed(photos))
    ps.choose_holdout(again, 3)
    assert {p.original for p in again if p.split == "holdout"} == held


def test_write_corpus_manifest(fake_debian, fake_wheels, tmp_path):
    corpus = ps.find_photos(sources("mate-backgrounds", "scikit-image"), wheel_dirs=[fake_wheels], holdout=1)
    out = tmp_path / "photos"
    ps.write_corpus(corpus, out)
    rows = list(csv.DictReader(open(out / "manifest.csv", encoding="utf-8")))
    assert len(rows) == 4 and tuple(rows[0]) == ps.MANIFEST_FIELDS
    assert sum(r["split"] == "holdout" for r in rows) == 0       # fake photos are under 1024 px
    for r in rows:
        assert (out / r["file"]).is_file() and r["file"].startswith(f"{r['split']}/{r['package']}/")
    meta = json.loads((out / "manifest.json").read_text())
    assert meta["reserved_never_read"] == ["plasma-workspace-wallpapers"] and len(meta["photos"]) == 4
    aqua = next(r for r in rows if r["file"].endswith("Aqua.jpg"))
    assert (out / aqua["file"]).read_bytes() == Path(aqua["original"]).read_bytes()   # copied as is
    with pytest.raises(InputError, match="--overwrite"):
        ps.write_corpus(corpus, out)
    ps.write_corpus(corpus, out, overwrite=True)


def test_dep5_name_fallback_for_other_layouts():
    paragraphs = ps.parse_dep5("Files: *\nCopyright: X\nLicense: GPL\n\n"
                               "Files: 16.04/Bridge.jpg\nCopyright: Sander\nLicense: CC-BY-SA-4.0\n\n"
                               "Files: debian/*\nCopyright: D\nLicense: Expat\n")
    assert ps.notice_for("/usr/share/backgrounds/Bridge.jpg", paragraphs).licence == "CC-BY-SA-4.0"
    assert ps.notice_for("/usr/share/backgrounds/Other.jpg", paragraphs).licence == "GPL"
