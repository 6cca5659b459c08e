"""core.device: the precision vocabulary, and reading device values back later."""
import dataclasses

import pytest
import torch

from ganstyle.core.device import FIXED_PRECISIONS, MIXED_PRECISION_MODES, PRECISIONS, read_later, resolve_dtype
from ganstyle.core.optimize import OptimizeOptions
from ganstyle.core.stylize import StylizeOptions
from ganstyle.core.training.config import TrainConfig
from ganstyle.nodes.encoder import LoadVGGEncoder


def _choices(cls, name: str) -> tuple:
    return next(f for f in dataclasses.fields(cls) if f.name == name).metadata["choices"]


def test_every_precision_option_takes_its_words_from_core_device():
    assert _choices(StylizeOptions, "precision") == PRECISIONS == ("auto", *FIXED_PRECISIONS)
    assert _choices(OptimizeOptions, "mixed_precision") == MIXED_PRECISION_MODES
    assert _choices(TrainConfig, "mixed_precision") == MIXED_PRECISION_MODES
    assert tuple(LoadVGGEncoder.INPUT_TYPES()["required"]["dtype"][0]) == FIXED_PRECISIONS
    assert set(MIXED_PRECISION_MODES) <= set(PRECISIONS)
    assert [resolve_dtype(p, torch.device("cpu")) for p in FIXED_PRECISIONS] == [
        torch.float32, torch.float16, torch.bfloat16]


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
