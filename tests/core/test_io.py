"""core.io: recognising safetensors files (other cases: tests/reliability/test_weights_faults.py)."""
import os
import stat

import pytest
import torch
from safetensors.torch import save_file

from ganstyle.core.io import load_safetensors_checked


@pytest.mark.parametrize("first_bytes", [b"\x80", b"PK"])
def test_header_length_that_starts_like_a_pickle_or_zip_is_still_safetensors(tmp_path, first_bytes):
    """A safetensors file starts with its header's length, whose first bytes can be those of a
    pickle (0x80: one file in 32, the length being a multiple of 8) or a zip ("PK")."""
    tensors = {"w": torch.arange(6.0).view(2, 3)}
    target = int.from_bytes(first_bytes, "little")   # the header length's low byte(s)
    path = tmp_path / "model.safetensors"
    for pad in range(target + 8):   # metadata padding sets the header length
        save_file(tensors, str(path), metadata={"pad": "x" * pad})
        if path.read_bytes()[:len(first_bytes)] == first_bytes:
            break
    else:
        pytest.fail(f"no padding gives a header length starting with {first_bytes!r}")
    assert torch.equal(load_safetensors_checked(path)["w"], tensors["w"])


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_written_files_get_the_umask_mode_not_0600(tmp_path, umask_022):
    """Images, exported models, checkpoints and JSON all go through atomic_write_bytes: under umask
    022 they are 0644 like any file a program writes, not mkstemp's private 0600."""
    from ganstyle.core.images import save_image
    from ganstyle.core.io import atomic_write_json, save_safetensors_atomic

    atomic_write_json(tmp_path / "options.json", {"a": 1})
    atomic_write_json(tmp_path / "options.json", {"a": 2})   # replacing a file: same rule
    save_safetensors_atomic({"w": torch.ones(2)}, tmp_path / "model.safetensors")
    save_image(torch.rand(3, 8, 8), tmp_path / "out.png")
    save_image(torch.rand(3, 8, 8), tmp_path / "out.jpg")
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_umask_is_honoured(tmp_path):
    from ganstyle.core.io import atomic_write_bytes

    previous = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "x.bin", b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "x.bin").stat().st_mode) == 0o640
