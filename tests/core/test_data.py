import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from ganstyle.core.data import (
    CropSampler,
    ImageSet,
    SkippedFilesWarning,
    decode_image,
    list_image_files,
    load_image_set,
    preview_images,
)
from ganstyle.core.errors import InputError


def _solid(path, color, size=(40, 30)):
    Image.new("RGB", size, color).save(path)
    return path


@pytest.fixture
def mixed_folder(tmp_path):
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    _solid(d / "a.png", (255, 0, 0), (80, 40))
    _solid(d / "b.jpg", (0, 255, 0), (40, 80))
    _solid(d / "sub" / "c.webp", (0, 0, 255), (60, 60))
    (d / "notes.txt").write_text("not an image")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (d / ".DS_Store").write_bytes(b"\0\0")
    return d


def test_folder_skips_bad_files_with_one_counting_warning(mixed_folder):
    with pytest.warns(SkippedFilesWarning) as record:
        images = load_image_set(mixed_folder, what="content images", short_side=20)
    assert len(record) == 1
    message = str(record[0].message)
    assert "skipped 2 of 5 files" in message and "notes.txt" in message and "broken.jpg" in message
    assert [p.name for p in images.files] == ["a.png", "b.jpg", "c.webp"]  # sorted, recursive, hidden ignored
    assert len(images.skipped) == 2 and images.summary()["used"] == 3
    # short side scaled to 20, aspect kept; uint8 (3, H, W)
    assert [tuple(t.shape) for t in images.images] == [(3, 20, 40), (3, 40, 20), (3, 20, 20)]
    assert images.images[0].dtype == torch.uint8
    red = images.as_float(0)
    assert red.shape == (1, 3, 20, 40) and float(red[0, 0].mean()) == pytest.approx(1.0, abs=0.02)
    assert float(red[0, 1].mean()) == pytest.approx(0.0, abs=0.02)


def test_no_warning_when_everything_is_readable(tmp_path):
    _solid(tmp_path / "x.png", (10, 20, 30))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images = load_image_set(tmp_path, short_side=16)
    assert len(images) == 1


@pytest.mark.parametrize("setup,pattern", [
    (lambda d: None, r"no usable content images in .*; no files found"),
    (lambda d: (d / "x.txt").write_text("x"), r"no usable content images .*1 file\(s\) were not readable.*x\.txt"),
    (lambda d: (d / "x.png").write_bytes(b"garbage"), r"x\.png: cannot read as an image"),
])
def test_empty_or_all_bad_folder_is_a_clear_error(tmp_path, setup, pattern):
    setup(tmp_path)
    with pytest.raises(InputError, match=pattern):
        load_image_set(tmp_path, what="content images", short_side=16)


def test_missing_source_is_an_error(tmp_path):
    with pytest.raises(InputError, match=r"style images source not found: .*nope"):
        list_image_files([tmp_path / "nope"], what="style images")
    with pytest.raises(InputError, match="no style images given"):
        list_image_files([], what="style images")


def test_several_sources_and_explicit_file_with_odd_suffix(tmp_path):
    a = _solid(tmp_path / "a.png", (0, 0, 0))
    odd = tmp_path / "painting.data"
    Image.new("RGB", (10, 10), (9, 9, 9)).save(odd, format="PNG")
    images = load_image_set([a, odd], long_side=32)
    assert [p.name for p in images.files] == ["a.png", "painting.data"]
    assert tuple(images.images[0].shape) == (3, 24, 32)  # 40x30 → long side 32


def test_style_scaling_keeps_short_side_at_least_crop(tmp_path):
    _solid(tmp_path / "pano.png", (1, 2, 3), (400, 50))
    img = load_image_set(tmp_path, long_side=100, min_short_side=32).images[0]
    assert tuple(img.shape) == (3, 32, 256)  # long side 100 would give a 12 px short side


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    im.save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    assert tuple(decode_image(tmp_path / "rotated.jpg").shape) == (3, 40, 20)


def _colour_set(n):
    # image i is a solid colour whose red channel encodes i; 24x24 so 16 px crops move around
    return ImageSet([torch.full((3, 24, 24), 10 * i, dtype=torch.uint8) for i in range(n)],
                    [f"{i}.png" for i in range(n)], what="test images")


def test_crop_sampler_is_a_pure_function_of_seed_and_step():
    images = ImageSet([torch.randint(0, 256, (3, 30, 40), generator=torch.Generator().manual_seed(0),
                                     dtype=torch.uint8)], ["x"])
    a = CropSampler(images, 16, 3, seed=7, stream="content")
    b = CropSampler(images, 16, 3, seed=7, stream="content")
    batch = a.batch(5)
    assert batch.shape == (3, 3, 16, 16) and batch.dtype == torch.float32
    assert 0 <= float(batch.min()) and float(batch.max()) <= 1
    torch.testing.assert_close(b.batch(5), batch, rtol=0, atol=0)  # fresh sampler, same step
    a.batch(0), a.batch(99)  # order of calls does not matter
    torch.testing.assert_close(a.batch(5), batch, rtol=0, atol=0)
    assert not torch.equal(a.batch(6), batch)
    assert not torch.equal(CropSampler(images, 16, 3, seed=8, stream="content").batch(5), batch)
    assert not torch.equal(CropSampler(images, 16, 3, seed=7, stream="style").batch(5), batch)


def test_every_image_once_per_epoch():
    sampler = CropSampler(_colour_set(5), 16, 5, seed=0, stream="content")
    for step in range(3):
        seen = sorted(round(float(x[0, 0, 0]) * 255 / 10) for x in sampler.batch(step))
        assert seen == [0, 1, 2, 3, 4]
    assert sampler.batch(0)[:, 0, 0, 0].tolist() != sampler.batch(1)[:, 0, 0, 0].tolist()


def test_ranks_take_slices_of_the_same_global_batch():
    images = ImageSet([torch.randint(0, 256, (3, 20, 28), generator=torch.Generator().manual_seed(i),
                                     dtype=torch.uint8) for i in range(7)], list("abcdefg"))
    single = CropSampler(images, 8, 4, seed=3, stream="content")
    ranks = [CropSampler(images, 8, 2, seed=3, stream="content", rank=r, world_size=2) for r in range(2)]
    for step in (0, 1, 4):
        torch.testing.assert_close(torch.cat([s.batch(step) for s in ranks]), single.batch(step), rtol=0, atol=0)
    assert ranks[0].state_dict() == {"seed": 3, "stream": "content", "crop_size": 8, "batch_size": 2,
                                     "world_size": 2, "num_images": 7, "scale_min": 1.0, "jitter": 0.0}


def test_crops_vary_and_flip():
    ramp = torch.arange(40, dtype=torch.uint8).mul(6).view(1, 1, 40).expand(3, 24, 40).contiguous()
    sampler = CropSampler(ImageSet([ramp], ["ramp"]), 16, 32, seed=0, stream="content")
    batch = sampler.batch(0)
    rows = batch[:, 0, 0, :]
    increasing = (rows[:, 1:] > rows[:, :-1]).all(1)
    decreasing = (rows[:, 1:] < rows[:, :-1]).all(1)
    assert bool((increasing | decreasing).all())
    assert 4 <= int(decreasing.sum()) <= 28  # about half flipped
    assert len({round(float(r.min()) * 255) for r in rows}) > 5  # different horizontal offsets


def test_small_images_are_upscaled_to_fit_the_crop():
    sampler = CropSampler(ImageSet([torch.full((3, 10, 12), 77, dtype=torch.uint8)], ["tiny"]), 16, 2,
                          seed=0, stream="style")
    batch = sampler.batch(0)
    assert batch.shape == (2, 3, 16, 16)
    assert float(batch.mean()) == pytest.approx(77 / 255, abs=1e-3)


def test_sampler_argument_checks():
    with pytest.raises(InputError):
        CropSampler(ImageSet([], [], what="style images"), 16, 2, seed=0, stream="s")
    with pytest.raises(ValueError, match="rank 2 is outside world size 2"):
        CropSampler(_colour_set(2), 16, 2, seed=0, stream="s", rank=2, world_size=2)


def test_preview_images_resized_to_short_side():
    out = preview_images(ImageSet([torch.zeros(3, 40, 80, dtype=torch.uint8)] * 3, ["a", "b", "c"]), 2, 20)
    assert [tuple(t.shape) for t in out] == [(1, 3, 20, 40), (1, 3, 20, 40)]


def test_random_scale_crops_cover_larger_regions_and_stay_deterministic():
    # A 64 px image of horizontal stripes 1 px wide: a plain 8 px crop keeps the full stripe
    # contrast; a crop covering up to 32 px resized to 8 px averages stripes away.
    stripes = (torch.arange(64) % 2 * 255).to(torch.uint8).view(1, 64, 1).expand(3, 64, 64).contiguous()
    images = ImageSet([stripes], [Path("stripes.png")])
    plain = CropSampler(images, 8, 16, seed=1, stream="content")
    scaled = CropSampler(images, 8, 16, seed=1, stream="content", scale_min=0.25)
    assert plain.batch(0).std(dim=(1, 2, 3)).min() > 0.45
    spread = scaled.batch(0).std(dim=(1, 2, 3))
    assert spread.min() < 0.2 and scaled.batch(0).shape == (16, 3, 8, 8)
    torch.testing.assert_close(scaled.batch(3), CropSampler(images, 8, 16, seed=1, stream="content",
                                                            scale_min=0.25).batch(3), rtol=0, atol=0)


def test_jitter_changes_exposure_within_bounds():
    grey = torch.full((3, 16, 16), 128, dtype=torch.uint8)
    images = ImageSet([grey], [Path("grey.png")])
    jittered = CropSampler(images, 8, 32, seed=2, stream="content", jitter=0.2).batch(0)
    means = jittered.mean(dim=(1, 2, 3))
    base = 128 / 255
    assert means.min() >= (base ** 1.2) * 0.8 - 1e-6 and means.max() <= (base ** 0.8) * 1.2 + 1e-6
    assert means.std() > 0.02        # crops differ
    with pytest.raises(ValueError, match="jitter"):
        CropSampler(images, 8, 2, seed=0, stream="content", jitter=1.5)
