"""A lean L-BFGS for one flat tensor, written for GPUs (used by :mod:`ganstyle.core.optimize`).

``torch.optim.LBFGS`` runs its two-loop recursion as ~4 small kernels per history pair and reads a
Python number back from the device for each (``alpha=-al[i]``): at 1024 px on an H100 that costs
~10 ms per iteration, as much as the VGG pass itself. Here the history is one (2m, n) matrix and
the search direction comes from the *compact representation* of the L-BFGS matrix (Byrd, Nocedal
& Schnabel, 1994): m×m algebra and two passes over the history per iteration (one product of
[S; Y] with the new pair and the new gradient together, one with the direction's coefficients),
a handful of kernels whatever m is, and no value read back.

An iteration waits for the device once, for the loss, and not even then with an idle device:
``fn`` may hand the loss back as a callable that waits for it, and before calling it the next
iteration's work (the new pair's products, the next direction) is already queued, as if the step
were accepted, which it almost always is. A rejected step drops that work (the history keeps one
spare slot for the tentative pair, so nothing is overwritten before it is accepted).

The line search is a backtracking (Armijo) search: the quasi-Newton step ``t = 1`` is tried first
and is accepted almost always, so an iteration is one loss evaluation. Pairs with non-positive
curvature (possible on a non-convex loss without a Wolfe search) are not used; that check runs
on the device too, and such a pair leaves an empty slot.

>>> a = torch.tensor([1.0, 10.0])
>>> fn = lambda x: (float((a * x * x).sum()), 2 * a * x)
>>> x = lbfgs(fn, torch.tensor([1.0, 1.0]), max_evals=30)
>>> bool(x.abs().max() < 1e-4)
True
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..device import read_later

# Armijo's sufficient-decrease constant, and the range a backtracking step may shrink to.
_ARMIJO = 1e-4
_SHRINK_MIN, _SHRINK_MAX = 0.1, 0.5


Loss = float | Callable[[], float]


def lbfgs(fn: Callable[[torch.Tensor], tuple[Loss, torch.Tensor]], x0: torch.Tensor, max_evals: int,
          history_size: int = 20, first_step: float = 0.01, step_size: float = 1.0) -> torch.Tensor:
    """Minimise ``fn`` from ``x0`` with at most ``max_evals`` calls of ``fn``; returns the best x.

    fn: x (n,) → (loss, gradient (n,)); the loss is a float, or a callable without arguments that
    returns it (called once, after the next iteration's device work is queued: it may wait for the
    device there). Either may raise to stop the run (the exception propagates).
    x0: (n,) float32 tensor on any device (not modified).
    first_step: size of the first step (a plain gradient step) as the mean |change| per value.
    step_size: the step tried first along each quasi-Newton direction (1 = the full step).
    Memory: x, gradient, two directions and ``history_size`` + 1 pairs of (n,) vectors.
    """
    if max_evals < 1:
        return x0.clone()
    x = x0.detach().clone()
    loss, grad = fn(x)
    loss = _value(loss)
    evals = 1
    memory = _History(history_size)
    direction = None   # the quasi-Newton direction at x, when it was queued ahead
    while evals < max_evals:
        if memory.empty:   # no curvature known yet: a gradient step of the requested size
            direction = grad.neg()
            step = first_step * x.numel() / max(float(grad.abs().sum()), 1e-30)
        else:
            direction = memory.direction(grad) if direction is None else direction
            step = step_size
        slope = read_later(torch.dot(grad, direction))   # < 0 for a descent direction
        while True:
            candidate = torch.add(x, direction, alpha=step)
            new_loss, new_grad = fn(candidate)
            evals += 1
            # Queue the next iteration as if this step will be accepted, then wait for its loss.
            ahead = None
            if not memory.empty and evals < max_evals:
                memory.add(candidate - x, new_grad - grad, tentative=True, next_grad=new_grad)
                ahead = memory.direction(new_grad)
            new_loss = _value(new_loss)
            slope = _value(slope)   # copied back meanwhile: no wait (then a plain number)
            accepted = new_loss <= loss + _ARMIJO * step * slope
            if ahead is not None and not accepted:
                memory.discard()
            if accepted or evals >= max_evals:
                break
            # Backtrack to the minimum of the quadratic through loss, slope and new_loss.
            curve = new_loss - loss - step * slope
            shrink = -slope * step / (2 * curve) if curve > 0 else _SHRINK_MAX
            step *= min(_SHRINK_MAX, max(_SHRINK_MIN, shrink))
        if not new_loss <= loss:   # budget ran out inside a failed line search: keep the better x
            break
        if ahead is not None:
            memory.commit()
        elif evals < max_evals:
            memory.add(candidate - x, new_grad - grad, next_grad=new_grad)
        x, loss, grad, direction = candidate, new_loss, new_grad, ahead
    return x


def _value(loss: Loss) -> float:
    return float(loss() if callable(loss) else loss)


class _History:
    """The last ``size`` pairs s = Δx, y = Δgrad as rows of one (2·slots, n) matrix [S; Y] (a ring
    buffer of ``size`` + 1 slots: slot i holds s in row i and y in row slots + i; the spare slot
    takes a tentative pair), with the slot-by-slot products SᵀY and YᵀY, each slot's age (the
    pair's number, −1 for none) and H0's scale, all on the device. A direction uses the newest
    ``size`` pairs with an age; the others drop out of its sums."""

    def __init__(self, size: int):
        self.size = max(1, size)
        self.slots = self.size + 1
        self.rows = None
        self.count = 0            # pairs committed so far (the next pair's number)
        self.tentative = False    # whether pair number ``count`` is stored but not committed
        self.gamma = None         # H0 = gamma·I, gamma = s·y / y·y of the newest good pair
        self.next_gamma = None    # gamma once the tentative pair is committed
        self._products_of = None  # (gradient, [S; Y]·gradient) computed by add()

    @property
    def empty(self) -> bool:
        return self.count == 0

    def add(self, s: torch.Tensor, y: torch.Tensor, tentative: bool = False,
            next_grad: torch.Tensor | None = None) -> None:
        """Store the pair number ``count`` (committed now, or by :meth:`commit` if ``tentative``).
        With ``next_grad``, the same pass over the history also gives the products that
        ``direction(next_grad)`` needs."""
        if self.tentative:
            raise RuntimeError("commit() or discard() the tentative pair first")
        k = self.slots
        if self.rows is None:
            self.rows = torch.zeros(2 * k, s.numel(), device=s.device, dtype=s.dtype)
            self.sy = torch.zeros(k, k, device=s.device, dtype=torch.float64)    # s_i·y_j
            self.yy = torch.zeros(k, k, device=s.device, dtype=torch.float64)    # y_i·y_j
            self.age = torch.full((k,), -1.0, device=s.device, dtype=torch.float64)
            self.gamma = torch.ones((), device=s.device, dtype=torch.float64)
        slot = self.count % k   # the spare slot: its pair (if any) is older than the newest `size`
        self.rows[slot].copy_(s)
        self.rows[k + slot].copy_(y)
        # One pass over the history gives every product with the new pair, its own s·y and y·y too
        # (and those with the next gradient: the history is read once, not twice, per iteration).
        vectors = [s, y] if next_grad is None else [s, y, next_grad]
        products = (self.rows @ torch.stack(vectors, 1)).double()   # (2k, 2|3): [S; Y]·[s, y(, g)]
        self._products_of = (next_grad, products[:, 2]) if next_grad is not None else None
        products = products[:, :2]
        sy, yy = products[slot, 1], products[k + slot, 1]
        valid = (sy > 1e-10 * yy) & (yy > 0)   # positive curvature along s (False for NaN, too)
        if self.count == 0 and not bool(valid):
            # The first pair is checked on the host (once per run): without one, lbfgs() takes
            # another plain gradient step instead of a quasi-Newton one.
            self.rows[slot].zero_()
            self.rows[k + slot].zero_()
            self._products_of = None
            return
        # A later pair without positive curvature is blanked where it lies, on the device (zero
        # rows and products, age −1), so the host never waits for this check.
        self.rows[slot].masked_fill_(~valid, 0)
        self.rows[k + slot].masked_fill_(~valid, 0)
        products = products.masked_fill(~valid, 0)
        self.sy[:, slot] = products[:k, 1]     # s_i·y_new
        self.sy[slot, :] = products[k:, 0]     # s_new·y_j
        self.yy[:, slot] = products[k:, 1]
        self.yy[slot, :] = products[k:, 1]
        self.age[slot] = torch.where(valid, float(self.count), -1.0)
        self.next_gamma = torch.where(valid, sy / yy, self.gamma)
        self.tentative = True
        if not tentative:
            self.commit()

    def commit(self) -> None:
        self.count += 1
        self.gamma, self.next_gamma, self.tentative = self.next_gamma, None, False

    def discard(self) -> None:
        self.age[self.count % self.slots] = -1.0
        self.next_gamma, self.tentative = None, False

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        """−H·grad with H = γI + [S γY] [[R⁻ᵀ(D + γYᵀY)R⁻¹, −R⁻ᵀ], [−R⁻¹, 0]] [Sᵀ; γYᵀ], where
        R holds s_i·y_j for pairs i no newer than j (triangular in time order) and D = diag(SᵀY),
        over the newest ``size`` pairs (the tentative one included)."""
        k = self.slots
        gamma = self.next_gamma if self.tentative else self.gamma
        newest = self.count if self.tentative else self.count - 1
        used = ((self.age >= 0) & (self.age > newest - self.size)).double()   # (k,) 1 = in use
        pair = used[:, None] * used[None, :]
        sy, yy = self.sy * pair, self.yy * pair
        if self._products_of is not None and self._products_of[0] is grad:
            pq = self._products_of[1]                                        # from add()
        else:
            pq = (self.rows @ grad).double()                                # [Sᵀg; Yᵀg]
        p, q = pq[:k] * used, pq[k:] * used
        r = sy * (self.age[:, None] <= self.age[None, :])
        r = r + torch.diag(1 - used)                # identity rows for slots not in use
        u = torch.linalg.solve_ex(r, p[:, None])[0][:, 0]                  # R⁻¹p
        inner = torch.diagonal(sy) * u + gamma * (yy @ u) - gamma * q
        top = torch.linalg.solve_ex(r.T, inner[:, None])[0][:, 0]          # R⁻ᵀ(…)
        coefficients = torch.cat([top, -gamma * u]).to(grad.dtype)
        return -(gamma * grad + self.rows.T @ coefficients)
