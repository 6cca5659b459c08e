"""``ganstyle data photos`` end to end on a fake package tree (dpkg listing and wheels faked)."""
from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from ganstyle.core import photo_sources as ps
from ganstyle.train_cli.__main__ import main


def _jpeg(seed: int, size=(1280, 800)) -> bytes:
    small = np.random.default_rng(seed).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(small).resize(size, Image.Resampling.BICUBIC).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def fake_packages(tmp_path, monkeypatch):
    """mate-backgrounds with three nature photos (one a smaller copy of another) and sklearn's
    china.jpg in a wheel; nothing else installed. Returns the wheel folder."""
    nature = tmp_path / "usr/share/backgrounds/mate/nature"
    nature.mkdir(parents=True)
    (nature / "Aqua.jpg").write_bytes(_jpeg(1))
    (nature / "Dune.jpg").write_bytes(_jpeg(2))
    (nature / "Dune_1024.jpg").write_bytes(_jpeg(2, (1024, 640)))
    listing = {"mate-backgrounds": sorted(str(p) for p in nature.iterdir())}
    monkeypatch.setattr(ps, "debian_files", listing.get)
    monkeypatch.setattr(ps, "debian_version", lambda package: "1.26.0-1")
    monkeypatch.setattr(ps, "installed_python_package", lambda source: None)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "scikit_learn-1.9.1-cp311-cp311-linux_x86_64.whl", "w") as z:
        z.writestr("sklearn/datasets/images/china.jpg", _jpeg(3, (640, 427)))
    return wheels


def test_photos_command(fake_packages, tmp_path, capsys):
    out = tmp_path / "photos"
    rc = main(["data", "photos", str(out), "--holdout", "1", "--wheels", str(fake_packages)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "missing: apt-get install ukui-wallpapers" in text
    assert "missing: pip download --no-deps" in text and "scikit-image" in text
    mate = next(line for line in text.splitlines() if line.startswith("mate-backgrounds"))
    assert mate.split()[2:6] == ["2", "1", "1", "1"]       # photos, train, holdout, duplicates
    rows = list(csv.DictReader(open(out / "manifest.csv", encoding="utf-8")))
    assert sorted((r["split"], r["package"]) for r in rows) == [
        ("holdout", "mate-backgrounds"), ("train", "mate-backgrounds"), ("train", "scikit-learn")]
    china = next(r for r in rows if r["package"] == "scikit-learn")
    assert (china["licence"], china["file"]) == ("CC-BY-2.0", "train/scikit-learn/china.jpg")
    assert all((out / r["file"]).is_file() for r in rows)


def test_plasma_refused(tmp_path, capsys):
    rc = main(["data", "photos", str(tmp_path / "p"), "--only", "plasma-workspace-wallpapers"])
    assert rc == 2
    assert "reserved for independent evaluation" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_nothing_installed_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ps, "debian_files", lambda package: None)
    monkeypatch.setattr(ps, "installed_python_package", lambda source: None)
    rc = main(["data", "photos", str(tmp_path / "p"), "--only", "mate-backgrounds", "--wheels", str(tmp_path)])
    assert rc == 2
    captured = capsys.readouterr()
    assert "missing: apt-get install mate-backgrounds" in captured.out
    assert "no photos found" in captured.err


def test_install_runs_apt_and_pip_download(fake_packages, tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr("subprocess.run", lambda command, check: ran.append(command) or
                        type("Done", (), {"returncode": 0})())
    main(["data", "photos", str(tmp_path / "p"), "--only", "ukui-wallpapers", "scikit-learn", "scikit-image",
          "--install", "--wheels", str(fake_packages)])
    assert ran[0][:1] == ["apt-get"] and ran[0][-1] == "ukui-wallpapers"
    assert ran[1][1:4] == ["-m", "pip", "download"] and ran[1][-1] == "scikit-image"   # sklearn was there
