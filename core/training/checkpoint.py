"""Training checkpoints: ``checkpoints/step_N/`` = ``state.safetensors`` + ``trainer_state.json``.

``state.safetensors`` holds every tensor (model weights, optimiser moments) under ``prefix.name``
keys; ``trainer_state.json`` the rest (step, optimiser hyper-parameters, RNG states, data-sampler
state, log accumulators) — no pickle anywhere. A checkpoint is written into a temporary folder
and renamed into place, so a crash leaves the previous one intact; older ones are pruned only
after the new one is complete.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from ..errors import WeightsError
from ..io import atomic_write_bytes, atomic_write_json, check_safetensors_file

CHECKPOINT_FORMAT = 1


def checkpoint_step(path: Path) -> int:
    """The step of a ``step_N`` folder; -1 for anything else."""
    try:
        return int(path.name.removeprefix("step_")) if path.name.startswith("step_") else -1
    except ValueError:
        return -1


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint in ``folder``. Folders appear only by renaming a completely written
    temporary folder, so every ``step_N`` folder is complete."""
    found = sorted((p for p in folder.glob("step_*") if p.is_dir() and checkpoint_step(p) >= 0),
                   key=checkpoint_step)
    return found[-1] if found else None


def module_tensors(modules: Mapping[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """{``prefix.key``: tensor} of the state dicts of ``modules`` = {prefix: module}."""
    return {f"{prefix}.{k}": v for prefix, module in modules.items() for k, v in module.state_dict().items()}


def pack_state(modules: Mapping[str, torch.nn.Module], optimizers: Mapping[str, torch.optim.Optimizer]
               ) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, JSON description of the optimisers) of ``modules`` and ``optimizers``."""
    tensors = module_tensors(modules)
    described = {}
    for prefix, opt in optimizers.items():
        opt_tensors, described[prefix] = _flatten_optimizer(opt, prefix)
        tensors.update(opt_tensors)
    return tensors, described


def unpack_state(tensors: dict[str, torch.Tensor], described: dict, modules: Mapping[str, torch.nn.Module],
                 optimizers: Mapping[str, torch.optim.Optimizer], source: Path) -> None:
    """Load what :func:`pack_state` made into ``modules`` and ``optimizers`` (strict)."""
    for prefix, module in modules.items():
        _load_module(module, tensors, prefix, source)
    for prefix, opt in optimizers.items():
        try:
            opt.load_state_dict(_unflatten_optimizer(tensors, described[prefix], prefix))
        except (KeyError, ValueError) as e:
            raise WeightsError(f"{source}: optimiser state '{prefix}' does not match this model ({e})") from e


def write_checkpoint(folder: Path, step: int, contents: Callable[[], tuple[dict[str, torch.Tensor], dict]],
                     *, keep: int) -> Path:
    """Write ``folder/step_N`` atomically (temp folder → rename), point ``latest.json`` at it,
    then prune all but the ``keep`` newest. ``contents()`` gives (tensors, JSON state); it is
    called only when that step has no checkpoint yet."""
    path = folder / f"step_{step:08d}"
    if not path.exists():
        tensors, state = contents()
        tmp = folder / f".tmp-step_{step:08d}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            atomic_write_bytes(tmp / "state.safetensors", safetensors_bytes(
                {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()},
                metadata={"format": "ganstyle-checkpoint", "step": str(step)}))
            atomic_write_bytes(tmp / "trainer_state.json", json.dumps(state, indent=1).encode())
            os.replace(tmp, path)  # atomic: the folder appears complete or not at all
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    atomic_write_json(folder / "latest.json", {"step": step, "folder": path.name})
    prune_checkpoints(folder, keep=keep, newest=path)
    return path


def prune_checkpoints(folder: Path, *, keep: int, newest: Path) -> None:
    """Delete leftover temporary folders and all but the ``keep`` newest checkpoints (never ``newest``)."""
    for stale in folder.glob(".tmp-step_*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a crash mid-write; never read
    folders = sorted((p for p in folder.glob("step_*") if checkpoint_step(p) >= 0), key=checkpoint_step)
    for old in folders[:-keep]:
        if old != newest:
            # rename first (atomic), then delete: a crash mid-delete must not leave a
            # half-emptied 'step_N' folder that looks like a complete checkpoint
            trash = folder / f".tmp-{old.name}-deleting-{os.getpid()}"
            try:
                os.replace(old, trash)
            except OSError:
                continue
            shutil.rmtree(trash, ignore_errors=True)


def read_checkpoint(folder: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(JSON state, tensors) of a checkpoint folder; a clear :class:`WeightsError` if damaged."""
    state_file, tensor_file = folder / "trainer_state.json", folder / "state.safetensors"
    try:
        state = json.loads(state_file.read_text())
    except FileNotFoundError as e:
        raise WeightsError(f"{state_file}: missing; {folder} is not a ganstyle checkpoint") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WeightsError(f"{state_file}: not valid JSON ({e}); the checkpoint is damaged — delete "
                           f"{folder} to resume from the previous one") from e
    found = state.get("format") if isinstance(state, dict) else None
    if found != CHECKPOINT_FORMAT:
        raise WeightsError(f"{state_file}: unsupported checkpoint format {found!r} (expected {CHECKPOINT_FORMAT})")
    header = check_safetensors_file(tensor_file)
    tensors: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(tensor_file), framework="pt", device="cpu") as f:
            for key in header:
                tensors[key] = f.get_tensor(key)
    except Exception as e:
        raise WeightsError(f"{tensor_file}: cannot read tensors ({e})") from e
    return state, tensors


def _load_module(module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str, source: Path) -> None:
    expected = module.state_dict()
    state = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or extra or wrong:
        raise WeightsError(f"{source}: the checkpoint's '{prefix}' does not match this model (missing "
                           f"{missing[:4]}, unexpected {extra[:4]}, wrong shapes {wrong[:4]}); was it made "
                           f"with other generator/discriminator options?")
    module.load_state_dict(state, strict=True)


def _flatten_optimizer(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state → tensors ``prefix.<param>.<name>`` + a JSON-able description."""
    sd = opt.state_dict()
    tensors, tensor_names, scalars = {}, {}, {}
    for pid, st in sd["state"].items():
        for name, value in st.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{pid}.{name}"] = value
                tensor_names.setdefault(str(pid), []).append(name)
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "tensor_state": tensor_names, "scalar_state": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict, prefix: str) -> dict:
    state: dict[int, dict] = {}
    for pid, names in meta["tensor_state"].items():
        state[int(pid)] = {name: tensors[f"{prefix}.{pid}.{name}"] for name in names}
    for pid, values in meta["scalar_state"].items():
        state.setdefault(int(pid), {}).update(values)
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


# ---- random number generators -----------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """torch (CPU + CUDA), numpy and python RNG states as JSON lists (no pickle)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    cuda = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return {"torch": torch.get_rng_state().tolist(), "cuda": cuda,
            "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "python": [py_state[0], list(py_state[1]), py_state[2]]}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if state.get("cuda") and torch.cuda.is_available():
        cuda = [torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
