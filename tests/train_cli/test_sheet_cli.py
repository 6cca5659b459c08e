import json

import pytest
import torch
from PIL import Image

from ganstyle.core.images import load_image, save_image
from ganstyle.core.stylize import stylize
from ganstyle.train_cli.__main__ import main

from helpers import synthetic_photo, tiny_generator

pytestmark = pytest.mark.usefixtures("one_thread", "auto_is_fp32")



@pytest.fixture
def library_dir(tmp_path):
    lib = tiny_generator(styles=({"name": "ink"}, {"name": "oil"}, {"name": "chalk"}))
    with torch.no_grad():
        for norm in lib.style_norms().values():
            norm.bias.copy_(torch.tensor([-1.0, 0.0, 1.0])[:, None].expand_as(norm.bias))
    return lib.save_pretrained(tmp_path / "lib")


def test_sheet_shows_every_style_labelled(library_dir, tmp_path, capsys):
    photo = save_image(synthetic_photo(40, 60), tmp_path / "photo.png")
    out = tmp_path / "sheet.png"
    assert main(["sheet", str(photo), "-o", str(out), "--model", str(library_dir), "--size", "60",
                 "--device", "cpu"]) == 0
    assert "3 style(s)" in capsys.readouterr().err
    with Image.open(out) as im:
        width, height = im.size
    assert height == 4 + 16 + 40 + 4 and width == 4 + 4 * (60 + 4)   # photo + 3 styles, labels above
    sheet = load_image(out)
    cells = [sheet[..., 20:60, 4 + i * 64:64 + i * 64] for i in range(4)]
    assert min((cells[i] - cells[j]).abs().mean() for i in range(1, 4) for j in range(1, i)) > 0.01
    assert main(["sheet", str(photo), "-o", str(out), "--model", str(library_dir)]) == 2   # no overwrite


def test_stylize_cli_takes_a_style_and_masks(library_dir, tmp_path):
    photo = save_image(synthetic_photo(32, 48), tmp_path / "photo.png")
    mask = Image.new("L", (24, 16), 0)
    mask.paste(255, (12, 0, 24, 16))
    mask.save(tmp_path / "right.png")
    out = tmp_path / "out.png"
    assert main(["stylize", str(photo), "-o", str(out), "--model", str(library_dir), "--style", "ink",
                 "--mask", f"{tmp_path / 'right.png'}=oil:0.5, chalk:0.5", "--device", "cpu"]) == 0
    from ganstyle.core.generator import StyleGenerator
    lib = StyleGenerator.from_pretrained(library_dir)
    right = torch.zeros(16, 24)
    right[:, 12:] = 1
    expected = stylize(lib, load_image(photo), style="ink", masks=[(right, "oil:0.5, chalk:0.5")])
    torch.testing.assert_close(load_image(out), expected, atol=1 / 255 + 1e-6, rtol=0)
    assert main(["stylize", str(photo), "-o", str(tmp_path / "x.png"), "--model", str(library_dir),
                 "--mask", "nomask"]) == 2
    config = json.loads((library_dir / "config.json").read_text())
    assert [s["name"] for s in config["styles"]] == ["ink", "oil", "chalk"]
