"""A lean L-BFGS for one flat tensor, written for GPUs (used by :mod:`ganstyle.core.optimize`).

``torch.optim.LBFGS`` runs its two-loop recursion as ~4 small kernels per history pair and reads a
Python number back from the device for each (``alpha=-al[i]``): at 1024 px on an H100 that costs
~10 ms per iteration, as much as the VGG pass itself. Here the history is one (2m, n) matrix and
the search direction comes from the *compact representation* of the L-BFGS matrix (Byrd, Nocedal
& Schnabel, 1994): two matrix-vector products over the history plus m×m algebra, a handful of
kernels whatever m is, and no value read back. An iteration waits for the device twice: for the
loss (which the progress callback reports anyway) and for the curvature of the new pair.

The line search is a backtracking (Armijo) search: the quasi-Newton step ``t = 1`` is tried first
and is accepted almost always, so an iteration is one loss evaluation. Pairs with non-positive
curvature (possible on a non-convex loss without a Wolfe search) are not stored.

>>> a = torch.tensor([1.0, 10.0])
>>> fn = lambda x: (float((a * x * x).sum()), 2 * a * x)
>>> x = lbfgs(fn, torch.tensor([1.0, 1.0]), max_evals=30)
>>> bool(x.abs().max() < 1e-4)
True
"""
from __future__ import annotations

from typing import Callable

import torch

# Armijo's sufficient-decrease constant, and the range a backtracking step may shrink to.
_ARMIJO = 1e-4
_SHRINK_MIN, _SHRINK_MAX = 0.1, 0.5


def lbfgs(fn: Callable[[torch.Tensor], tuple[float, torch.Tensor]], x0: torch.Tensor, max_evals: int,
          history_size: int = 20, first_step: float = 0.01, step_size: float = 1.0) -> torch.Tensor:
    """Minimise ``fn`` from ``x0`` with at most ``max_evals`` calls of ``fn``; returns the best x.

    fn: x (n,) → (loss, gradient (n,)); it may raise to stop the run (the exception propagates).
    x0: (n,) float32 tensor on any device (not modified).
    first_step: size of the first step (a plain gradient step) as the mean |change| per value.
    step_size: the step tried first along each quasi-Newton direction (1 = the full step).
    Memory: x, gradient, direction and ``history_size`` pairs of (n,) vectors.
    """
    if max_evals < 1:
        return x0.clone()
    x = x0.detach().clone()
    loss, grad = fn(x)
    evals = 1
    memory = _History(history_size)
    while evals < max_evals:
        if memory.empty:   # no curvature known yet: a gradient step of the requested size
            direction = grad.neg()
            step = first_step * x.numel() / max(float(grad.abs().sum()), 1e-30)
        else:
            direction = memory.direction(grad)
            step = step_size
        slope = torch.dot(grad, direction)   # < 0 for a descent direction; read after the next loss
        while True:
            candidate = x + step * direction
            new_loss, new_grad = fn(candidate)
            evals += 1
            slope = float(slope)   # one read-back, once the loss is in (then a plain number)
            if new_loss <= loss + _ARMIJO * step * slope or evals >= max_evals:
                break
            # Backtrack to the minimum of the quadratic through loss, slope and new_loss.
            curve = new_loss - loss - step * slope
            shrink = -slope * step / (2 * curve) if curve > 0 else _SHRINK_MAX
            step *= min(_SHRINK_MAX, max(_SHRINK_MIN, shrink))
        if not new_loss <= loss:   # budget ran out inside a failed line search: keep the better x
            break
        memory.add(candidate - x, new_grad - grad)
        x, loss, grad = candidate, new_loss, new_grad
    return x


class _History:
    """The last ``size`` pairs s = Δx, y = Δgrad as rows of one (2·size, n) matrix [S; Y] (a ring
    buffer: slot i holds s in row i and y in row size + i), with the slot-by-slot products SᵀY and
    YᵀY and each slot's age, all on the device. Empty slots hold zeros and drop out of the sums."""

    def __init__(self, size: int):
        self.size = max(1, size)
        self.rows = None
        self.count = 0                    # pairs stored so far (the next pair's age)
        self.gamma = 1.0                  # H0 = gamma·I, gamma = s·y / y·y of the newest pair

    @property
    def empty(self) -> bool:
        return self.count == 0

    def add(self, s: torch.Tensor, y: torch.Tensor) -> None:
        sy, yy = torch.stack([torch.dot(s, y), torch.dot(y, y)]).tolist()
        if not (sy > 1e-10 * yy and yy > 0):
            return   # no positive curvature along s: the pair would break the estimate
        m = self.size
        if self.rows is None:
            self.rows = torch.zeros(2 * m, s.numel(), device=s.device, dtype=s.dtype)
            self.sy = torch.zeros(m, m, device=s.device, dtype=torch.float64)    # s_i·y_j
            self.yy = torch.zeros(m, m, device=s.device, dtype=torch.float64)    # y_i·y_j
            self.age = torch.full((m,), -1.0, device=s.device, dtype=torch.float64)   # −1: empty
        slot = self.count % m
        self.rows[slot].copy_(s)
        self.rows[m + slot].copy_(y)
        self.age[slot] = self.count
        self.count += 1
        # One pass over the history gives every product with the new pair.
        products = (self.rows @ torch.stack([s, y], 1)).double()   # (2m, 2): [S; Y]·[s, y]
        self.sy[:, slot] = products[:m, 1]     # s_i·y_new
        self.sy[slot, :] = products[m:, 0]     # s_new·y_j
        self.yy[:, slot] = products[m:, 1]
        self.yy[slot, :] = products[m:, 1]
        self.gamma = sy / yy

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        """−H·grad with H = γI + [S γY] [[R⁻ᵀ(D + γYᵀY)R⁻¹, −R⁻ᵀ], [−R⁻¹, 0]] [Sᵀ; γYᵀ], where
        R holds s_i·y_j for pairs i no newer than j (triangular in time order) and D = diag(SᵀY)."""
        m, gamma = self.size, self.gamma
        pq = (self.rows @ grad).double()                                    # [Sᵀg; Yᵀg]
        p, q = pq[:m], pq[m:]
        empty = self.age < 0
        r = self.sy * (self.age[:, None] <= self.age[None, :])
        r = r + torch.diag(empty.double())          # identity rows for empty slots (all zeros)
        u = torch.linalg.solve_ex(r, p[:, None])[0][:, 0]                  # R⁻¹p
        inner = torch.diagonal(self.sy) * u + gamma * (self.yy @ u) - gamma * q
        top = torch.linalg.solve_ex(r.T, inner[:, None])[0][:, 0]          # R⁻ᵀ(…)
        coefficients = torch.cat([top, -gamma * u]).to(grad.dtype)
        return -(gamma * grad + self.rows.T @ coefficients)
