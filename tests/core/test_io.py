"""core.io: recognising safetensors files (other cases: tests/reliability/test_weights_faults.py)."""
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
