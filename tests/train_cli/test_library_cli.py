import json

import pytest
import torch

from ganstyle.core.generator import StyleGenerator
from ganstyle.core.style_files import add_styles, save_style_file, shared_fingerprint
from ganstyle.train_cli.__main__ import main

from helpers import synthetic_photo, tiny_generator, tiny_library

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def library_and_style_file(tmp_path):
    """A saved 3-style tiny library and a style file 'stripes' on its convolutions (new norm parameters)."""
    library = tiny_library()
    lib_dir = library.save_pretrained(tmp_path / "lib")
    single = library.mixed(torch.tensor([0.0, 1.0, 0.0]))
    with torch.no_grad():
        for name in single.norm_parameter_names():
            single.get_parameter(name).mul_(-0.5)
    style_dir = save_style_file(single, tmp_path / "stripes", {"name": "stripes", "licence": "CC0"}, library)
    return library, lib_dir, single, style_dir


def test_library_keeps_the_named_styles_and_adds_style_files(library_and_style_file, tmp_path, capsys):
    library, lib_dir, stripes, style_dir = library_and_style_file
    out = tmp_path / "mine"
    assert main(["library", "-o", str(out), "--model", str(lib_dir), "--styles-from", str(style_dir),
                 "--keep", "stripes", "ink"]) == 0
    assert "2 style(s) (stripes, ink)" in capsys.readouterr().err
    mine = StyleGenerator.from_pretrained(out)
    assert mine.style_names == ["stripes", "ink"]
    assert json.loads((out / "config.json").read_text())["styles"][0]["licence"] == "CC0"
    assert "| `stripes` |" in (out / "README.md").read_text()
    x = synthetic_photo(20, 28)
    torch.testing.assert_close(mine(x, torch.tensor([[1.0, 0.0]])), stripes(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(mine(x, torch.tensor([[0.0, 1.0]])), library(x, torch.tensor([[1.0, 0.0, 0.0]])),
                               atol=1e-6, rtol=0)
    # same convolutions: style files trained on the original library still load into the new one
    assert shared_fingerprint(mine) == shared_fingerprint(library)
    assert add_styles(StyleGenerator.from_pretrained(lib_dir), [style_dir]).style_names[-1] == "stripes"


def test_library_fp16_halves_the_file_and_warns_when_the_convolutions_change(library_and_style_file, tmp_path,
                                                                             capsys):
    _, lib_dir, _, _ = library_and_style_file
    assert main(["library", "-o", str(tmp_path / "half"), "--model", str(lib_dir), "--fp16"]) == 0
    assert "float16 changes the shared weights" in capsys.readouterr().err   # the source was stored as float32
    full = (lib_dir / "model.safetensors").stat().st_size
    assert (tmp_path / "half" / "model.safetensors").stat().st_size < 0.6 * full
    assert StyleGenerator.from_pretrained(tmp_path / "half").style_names == ["ink", "oil", "chalk"]
    # from a float16 library, float16 again keeps every weight: no warning
    assert main(["library", "-o", str(tmp_path / "again"), "--model", str(tmp_path / "half"), "--fp16"]) == 0
    assert "float16 changes" not in capsys.readouterr().err


def test_library_errors_name_the_problem(library_and_style_file, tmp_path, capsys):
    _, lib_dir, _, style_dir = library_and_style_file
    out = tmp_path / "mine"
    assert main(["library", "-o", str(out), "--model", str(lib_dir), "--keep", "ink", "paint"]) == 2
    assert "no style named 'paint'; the styles are ink, oil, chalk" in capsys.readouterr().err
    assert main(["library", "-o", str(out), "--model", str(lib_dir), "--keep", "ink", "ink"]) == 2
    assert "twice" in capsys.readouterr().err
    single = tiny_generator().save_pretrained(tmp_path / "single")
    assert main(["library", "-o", str(out), "--model", str(single)]) == 2
    assert "single-style model" in capsys.readouterr().err
    assert main(["library", "-o", str(out), "--model", str(lib_dir), "--styles-from", str(style_dir),
                 "--styles-from", str(style_dir)]) == 2
    assert "already in the library" in capsys.readouterr().err
    assert not out.exists()
    (tmp_path / "file").write_text("x")
    assert main(["library", "-o", str(tmp_path / "file"), "--model", str(lib_dir)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["library", "-o", str(out), "--model", str(lib_dir)]) == 0
    before = (out / "model.safetensors").read_bytes()
    assert main(["library", "-o", str(out), "--model", str(lib_dir), "--keep", "oil"]) == 2   # no --overwrite
    assert (out / "model.safetensors").read_bytes() == before
    assert main(["library", "-o", str(out), "--model", str(lib_dir), "--keep", "oil", "--overwrite"]) == 0
    assert StyleGenerator.from_pretrained(out).style_names == ["oil"]
