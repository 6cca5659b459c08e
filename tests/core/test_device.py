"""core.device: reading device values back later."""
import pytest
import torch

from ganstyle.core.device import read_later


def test_read_later_gives_floats_and_lists():
    scalar, vector = read_later(torch.tensor(2.5)), read_later(torch.tensor([1.0, -3.0]))
    assert scalar() == 2.5 and isinstance(scalar(), float)
    assert vector() == [1.0, -3.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_read_later_on_cuda_reads_the_values_of_the_call_not_of_later_work():
    values = torch.arange(4.0, device="cuda")
    read = read_later(values)
    values.fill_(7.0)   # queued after the copy: must not change what is read
    assert read() == [0.0, 1.0, 2.0, 3.0]
