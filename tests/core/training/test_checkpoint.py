import json
import random

import numpy as np
import pytest
import torch

from ganstyle.core.errors import WeightsError
from ganstyle.core.training.checkpoint import (
    latest_checkpoint,
    pack_state,
    read_checkpoint,
    rng_state,
    set_rng_state,
    unpack_state,
    write_checkpoint,
)


def tiny_state(seed: int):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.rand(4, 3)).sum().backward()
    opt.step()
    return model, opt


def test_rng_states_round_trip():
    state = rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(123), np.random.seed(5), random.seed(9)
    set_rng_state(json.loads(json.dumps(state)))  # JSON, no pickle
    got = (torch.rand(3), np.random.rand(3), random.random())
    torch.testing.assert_close(got[0], expected[0])
    assert np.array_equal(got[1], expected[1]) and got[2] == expected[2]


def test_write_read_restore_and_prune(tmp_path):
    model, opt = tiny_state(0)
    tensors, optimizers = pack_state({"m": model}, {"opt": opt})
    for step in (1, 2, 3):
        write_checkpoint(tmp_path, step, lambda step=step: (tensors, {"format": 1, "step": step,
                                                                      "optimizers": optimizers}),
                         keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "step_00000002", "step_00000003"]
    assert latest_checkpoint(tmp_path).name == "step_00000003"

    state, read = read_checkpoint(latest_checkpoint(tmp_path))
    other, other_opt = tiny_state(1)
    unpack_state(read, state["optimizers"], {"m": other}, {"opt": other_opt}, tmp_path)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(other.state_dict()[k], v, rtol=0, atol=0)
    torch.testing.assert_close(other_opt.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    with pytest.raises(WeightsError, match=r"'m' does not match this model"):
        unpack_state(read, state["optimizers"], {"m": torch.nn.Linear(3, 4)}, {}, tmp_path)


def test_garbage_is_ignored_then_cleaned(tmp_path):
    model, opt = tiny_state(0)
    contents = lambda: (pack_state({"m": model}, {})[0], {"format": 1})  # noqa: E731
    write_checkpoint(tmp_path, 1, contents, keep=2)
    garbage = tmp_path / ".tmp-step_00000009-4242"
    garbage.mkdir()
    (garbage / "state.safetensors").write_bytes(b"\x10\x00\x00")  # truncated
    (tmp_path / "step_x").mkdir()
    assert latest_checkpoint(tmp_path).name == "step_00000001"
    write_checkpoint(tmp_path, 2, contents, keep=2)
    assert not garbage.exists()


def test_damaged_checkpoints_are_clear_errors(tmp_path):
    folder = tmp_path / "step_00000001"
    folder.mkdir()
    with pytest.raises(WeightsError, match="trainer_state.json: missing"):
        read_checkpoint(folder)
    (folder / "trainer_state.json").write_text(json.dumps({"format": 7}))
    with pytest.raises(WeightsError, match="unsupported checkpoint format 7"):
        read_checkpoint(folder)
