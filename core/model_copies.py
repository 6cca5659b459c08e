"""Device/dtype copies of style models for inference, and the CUDA graphs replayed for them.

:func:`prepare_model` converts a generator for a device and precision once and remembers the copy
until the weights change, so repeated calls do not pay for the conversion; the caller's model is
never modified. :func:`graph_forward` replays a whole-image pass as a CUDA graph
(:mod:`ganstyle.core.cuda_graph`) once its input shape repeats. :func:`release_device_copies`
forgets both for a model.
"""
from __future__ import annotations

import copy
import threading
import weakref
from collections import OrderedDict

import torch

from .cuda_graph import CapturedGraph, capture
from .decoder import EncoderDecoder
from .errors import InputError
from .generator import StyleGenerator

# the model classes inference converts: feed-forward generators and encoder–decoders
MODEL_CLASSES = (StyleGenerator, EncoderDecoder)

_prepared: weakref.WeakKeyDictionary[StyleGenerator, dict] = weakref.WeakKeyDictionary()
_prepared_lock = threading.Lock()


def weights_version(module: torch.nn.Module) -> tuple:
    """Changes whenever ``module``'s weights are replaced or modified in place (storage and the
    tensors' version counters): the key that tells a cached copy derived from it is stale.
    Inference tensors (a model loaded inside ComfyUI's inference mode) have no version counter."""
    return tuple((t.data_ptr(), 0 if t.is_inference() else t._version) for t in module.state_dict().values())


def prepare_model(model, device: torch.device, dtype: torch.dtype,
                  channels_last: bool = False) -> StyleGenerator:
    """The generator ready for inference on ``device``/``dtype``: ``model`` itself when it already
    is, otherwise a converted copy (the caller's model is never modified). Copies are remembered
    per model until its weights change (tracked by the tensors' in-place version counters), so
    repeated calls do not pay for the conversion."""
    generator = getattr(model, "generator", model)
    if not isinstance(generator, MODEL_CLASSES):
        raise InputError(f"expected a style model (StyleGenerator), got {type(model).__name__}")
    p = next(generator.parameters())
    conv = next(m.weight for m in generator.modules() if isinstance(m, torch.nn.Conv2d))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if p.device == device and p.dtype == dtype and not generator.training and conv.is_contiguous(memory_format=fmt):
        return generator
    key = (str(device), dtype, channels_last)
    version = weights_version(generator)
    with _prepared_lock:
        cached = _prepared.get(generator, {}).get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    with torch.inference_mode():  # the copy is only ever used for inference
        copied = copy.deepcopy(generator) if p.device.type == "cpu" else _copy_via_cpu(generator)
        copied = copied.to(device=device, dtype=dtype, memory_format=fmt).eval().requires_grad_(False)
    with _prepared_lock:
        _prepared.setdefault(generator, {})[key] = (version, copied)
    return copied


def release_device_copies(model) -> int:
    """Forget the converted copies (and their CUDA graphs) that
    :func:`~ganstyle.core.stylize.stylize` keeps for ``model``, freeing their device memory;
    returns how many were dropped. ComfyUI's node calls this after each run, so nothing stays on
    the GPU between runs (the offload device keeps the weights)."""
    generator = getattr(model, "generator", model)
    if not isinstance(generator, MODEL_CLASSES):
        return 0  # not a model (a bad input already reported by stylize()); nothing was copied
    with _prepared_lock:
        copies = _prepared.pop(generator, {})
    with _graph_lock:
        for _, copied in copies.values():
            _graphs.pop(copied, None)
        _graphs.pop(generator, None)
    return len(copies)


def _copy_via_cpu(generator: StyleGenerator) -> StyleGenerator:
    clone = type(generator)(generator.config)
    clone.load_state_dict({k: v.detach().to("cpu") for k, v in generator.state_dict().items()}, strict=True)
    return clone


# ---- CUDA graphs -------------------------------------------------------------------------------
# A graph is captured the second time an input shape is seen (one-off sizes never pay for a
# capture), for whole-image passes needing at most GRAPH_MAX_BYTES of activations (each graph keeps
# that memory), and at most GRAPHS_PER_MODEL are kept per model.
GRAPH_MAX_BYTES = 512 << 20
GRAPHS_PER_MODEL = 3
_graphs: weakref.WeakKeyDictionary[StyleGenerator, OrderedDict] = weakref.WeakKeyDictionary()
_graph_lock = threading.Lock()


def graph_forward(model: StyleGenerator, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` through a CUDA graph when worthwhile (see above), else eagerly. Replays run
    under the lock: the graph's input and output buffers are shared."""
    weights = tuple(p.data_ptr() for p in model.parameters())  # a graph reads these addresses
    key = (tuple(x.shape), x.dtype, x.is_contiguous(memory_format=torch.channels_last), weights)
    with _graph_lock:
        entries = _graphs.setdefault(model, OrderedDict())
        entry = entries.get(key)
        if isinstance(entry, CapturedGraph):
            entries.move_to_end(key)
            return entry.replay(x).clone()
        if entry is None or entry == "failed":
            entries.setdefault(key, "seen")
            return model(x)
        captured = capture(model, x)
        if captured is None:   # capture unsupported here: stay eager for this shape
            entries[key] = "failed"
            return model(x)
        entries[key] = captured
        for old in [k for k, v in entries.items() if isinstance(v, CapturedGraph)][:-GRAPHS_PER_MODEL]:
            del entries[old]
        return captured.replay(x).clone()
