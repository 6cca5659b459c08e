import pytest
from PIL import Image

from ganstyle.core.errors import InputError
from ganstyle.core.images import IMAGE_FORMATS, IMAGE_SUFFIXES, encode_image, load_image, save_image

from helpers import synthetic_photo


@pytest.mark.parametrize("suffix", sorted(IMAGE_FORMATS))
def test_every_readable_suffix_is_written_in_its_own_format(tmp_path, suffix):
    """`-o result.bmp` gives a real BMP (not PNG bytes under a .bmp name) that reads back as the image."""
    image = synthetic_photo(24, 32)
    path = save_image(image, tmp_path / f"result{suffix}")
    with Image.open(path) as im:
        assert im.format == IMAGE_FORMATS[suffix] and im.size == (32, 24) and im.mode == "RGB"
    lossy = IMAGE_FORMATS[suffix] in ("JPEG", "WEBP")
    tolerance = 0.08 if lossy else 0.5 / 255 + 1e-6
    assert (load_image(path) - image[None]).abs().mean() <= tolerance


def test_writable_and_readable_suffixes_agree():
    assert set(IMAGE_FORMATS) == IMAGE_SUFFIXES


def test_unknown_suffix_is_refused_and_writes_nothing(tmp_path):
    with pytest.raises(InputError, match=r"result\.gif: cannot write images with suffix '\.gif'"):
        save_image(synthetic_photo(8, 8), tmp_path / "result.gif")
    assert list(tmp_path.iterdir()) == []


def test_png_level_trades_size_for_time():
    image = synthetic_photo(64, 64)
    stored, default, smallest = (len(encode_image(image, "PNG", level)) for level in (0, 3, 9))
    assert stored > default >= smallest
    assert encode_image(image, "PNG") == encode_image(image, "PNG", 3)
