"""pyproject.toml lists every package of the source tree: setuptools installs only the listed ones,
so a new subpackage missing there is missing from a wheel (an editable install hides that)."""
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")   # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_in_pyproject():
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = ["ganstyle"] + [".".join(("ganstyle", *init.parent.relative_to(ROOT).parts))
                            for top in ("core", "nodes", "train_cli") for init in (ROOT / top).rglob("__init__.py")]
    assert sorted(listed) == sorted(found)
