"""core.lbfgs: the compact L-BFGS direction, convergence, budget and best-point behaviour."""
import pytest
import torch

from ganstyle.core.lbfgs import _History, lbfgs


def _two_loop_reference(grad, pairs):
    """−H·grad by the textbook two-loop recursion (float64), for comparison."""
    q = grad.double().clone()
    alphas = []
    for s, y in reversed(pairs):
        rho = 1 / s.double().dot(y.double())
        alpha = rho * s.double().dot(q)
        q -= alpha * y.double()
        alphas.append((alpha, rho))
    s, y = pairs[-1]
    q *= s.double().dot(y.double()) / y.double().dot(y.double())
    for (s, y), (alpha, rho) in zip(pairs, reversed(alphas)):
        q += (alpha - rho * y.double().dot(q)) * s.double()
    return -q


@pytest.mark.parametrize("added", [1, 3, 5, 9])   # part-filled, full, and wrapped ring buffers
def test_compact_direction_equals_two_loop(added):
    g = torch.Generator().manual_seed(added)
    n = 40
    a = torch.randn(n, n, generator=g, dtype=torch.float64)
    hessian = (a @ a.T + n * torch.eye(n, dtype=torch.float64)).float()
    history, pairs = _History(5), []
    for _ in range(added):
        s = torch.randn(n, generator=g)
        history.add(s, hessian @ s)
        pairs = (pairs + [(s, hessian @ s)])[-5:]
    grad = torch.randn(n, generator=g)
    expected = _two_loop_reference(grad, pairs)
    torch.testing.assert_close(history.direction(grad).double(), expected, rtol=1e-5, atol=1e-6 * float(expected.abs().max()))


def test_pairs_without_positive_curvature_are_skipped():
    history = _History(3)
    history.add(torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0]))   # s·y < 0
    assert history.empty
    history.add(torch.tensor([1.0, 0.0]), torch.tensor([2.0, 0.0]))
    assert not history.empty and history.gamma == pytest.approx(0.5)


def test_minimises_rosenbrock_within_budget():
    calls = []

    def rosenbrock(x):
        calls.append(1)
        x = x.detach().requires_grad_(True)
        loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        loss.backward()
        return float(loss.detach()), x.grad

    x = lbfgs(rosenbrock, torch.tensor([-1.2, 1.0]), max_evals=200, history_size=5, first_step=0.1)
    assert len(calls) <= 200
    torch.testing.assert_close(x, torch.tensor([1.0, 1.0]), atol=1e-3, rtol=0)


def test_budget_is_exact_and_result_is_the_best_point_seen():
    losses = []

    def bowl(x):
        loss = float((x * x).sum())
        losses.append(loss)
        return loss, 2 * x

    x0 = torch.full((10,), 3.0)
    x = lbfgs(bowl, x0, max_evals=4)
    assert len(losses) == 4
    assert float((x * x).sum()) == pytest.approx(min(losses))
    assert torch.equal(x0, torch.full((10,), 3.0))   # the start is not modified
    assert torch.equal(lbfgs(bowl, x0, max_evals=0), x0)


def test_exceptions_from_fn_propagate():
    class Stop(Exception):
        pass

    def stop_on_third(x, count=[0]):
        count[0] += 1
        if count[0] == 3:
            raise Stop
        return float((x * x).sum()), 2 * x

    with pytest.raises(Stop):
        lbfgs(stop_on_third, torch.ones(3), max_evals=10)


def test_step_size_scales_the_quasi_newton_step():
    """On a quadratic the full step (1.0) converges at once after the first pairs; half steps
    leave the error halving per iteration."""
    def bowl(x):
        return float((x * x).sum()), 2 * x

    full = lbfgs(bowl, torch.full((4,), 1.0), max_evals=6)
    half = lbfgs(bowl, torch.full((4,), 1.0), max_evals=6, step_size=0.5)
    assert float(full.abs().max()) < 1e-6 < float(half.abs().max())
