"""CUDA graphs: capture a function of one tensor once, then replay it on new values.

A small network, or one loss evaluation of many small kernels, is bound by kernel launches on a
big GPU; replaying a captured graph launches them all at once. The inference engine
(:mod:`ganstyle.core.stylize`) captures a generator's forward pass, the optimiser
(:mod:`ganstyle.core.optimize`) a loss evaluation with its backward pass.

A graph reads and writes fixed addresses: the input is copied into a static tensor before each
replay, and the output (and, with ``requires_grad``, the input's gradient) is overwritten by the
next replay, so callers copy what they keep.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import torch

logger = logging.getLogger(__name__)

_WARMUP_CALLS = 2


class CapturedGraph:
    """``fn(x)`` for one shape of ``x``, captured as a CUDA graph; build it with :func:`capture`.

    ``static_input``: the tensor the graph reads (with ``requires_grad``, its ``.grad`` is what a
    captured backward pass writes); ``static_output``: what ``fn`` returned during capture."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], example: torch.Tensor, requires_grad: bool):
        self.static_input = example.detach().clone().requires_grad_(requires_grad)
        current = torch.cuda.current_stream(example.device)
        side = torch.cuda.Stream(example.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):   # warm-up off the main stream: cuDNN/cuBLAS pick kernels
            for _ in range(_WARMUP_CALLS):
                self._clear_grad()
                fn(self.static_input)
        current.wait_stream(side)
        self._clear_grad()              # so a captured backward writes the gradient, not adds to it
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: other threads of the host (ComfyUI's) may keep using CUDA meanwhile
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            self.static_output = fn(self.static_input)

    def _clear_grad(self) -> None:
        if self.static_input.requires_grad:
            self.static_input.grad = None

    def replay(self, x: torch.Tensor) -> torch.Tensor:
        """Run the graph on ``x`` (the captured shape); returns ``static_output`` itself."""
        with torch.no_grad():
            self.static_input.copy_(x)
        self.graph.replay()
        return self.static_output


def capture(fn: Callable[[torch.Tensor], torch.Tensor], example: torch.Tensor,
            requires_grad: bool = False) -> CapturedGraph | None:
    """``fn`` captured on ``example``'s shape, or None when capture fails here (an allocator or
    driver without support, or no memory for the graph): the caller then runs ``fn`` eagerly."""
    try:
        return CapturedGraph(fn, example, requires_grad)
    except Exception:   # any capture failure means: stay eager
        logger.debug("CUDA graph capture failed for input %s; running eagerly", tuple(example.shape),
                     exc_info=True)
        torch.cuda.synchronize(example.device)
        return None
