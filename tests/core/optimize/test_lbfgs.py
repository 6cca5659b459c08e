"""core.optimize.lbfgs: the compact L-BFGS direction, convergence, budget and best-point behaviour."""
import pytest
import torch

from ganstyle.core.optimize.lbfgs import _History, lbfgs


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


def _random_hessian(n, generator):
    """A well-conditioned symmetric positive definite (n, n) float32 matrix."""
    a = torch.randn(n, n, generator=generator, dtype=torch.float64)
    return (a @ a.T + n * torch.eye(n, dtype=torch.float64)).float()


def _curvature_pairs(hessian, count, generator):
    """``count`` pairs (s, H·s), s random: the pairs L-BFGS stores on the quadratic with Hessian H."""
    steps = [torch.randn(hessian.shape[0], generator=generator) for _ in range(count)]
    return [(s, hessian @ s) for s in steps]


@pytest.mark.parametrize("added", [1, 3, 5, 9])   # part-filled, full, and wrapped ring buffers
def test_compact_direction_equals_two_loop(added):
    g = torch.Generator().manual_seed(added)
    n = 40
    pairs = _curvature_pairs(_random_hessian(n, g), added, g)
    history = _History(5)
    for s, y in pairs:
        history.add(s, y)
    grad = torch.randn(n, generator=g)
    expected = _two_loop_reference(grad, pairs[-5:])
    torch.testing.assert_close(history.direction(grad).double(), expected, rtol=1e-5,
                               atol=1e-6 * float(expected.abs().max()))


def test_pairs_without_positive_curvature_are_skipped():
    history = _History(3)
    history.add(torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0]))   # s·y < 0
    assert history.empty
    history.add(torch.tensor([1.0, 0.0]), torch.tensor([2.0, 0.0]))
    assert not history.empty and float(history.gamma) == pytest.approx(0.5)


@pytest.mark.parametrize("valid_before", [2, 3])   # the bad pair fills an empty slot / the oldest
def test_later_pairs_without_positive_curvature_drop_out_of_the_direction(valid_before):
    """A later pair with s·y <= 0 (or NaN in it) is blanked on the device: the direction is the
    two-loop one over the pairs kept, with gamma from the newest good pair."""
    g = torch.Generator().manual_seed(valid_before)
    n = 12
    pairs = _curvature_pairs(_random_hessian(n, g), valid_before, g)
    history = _History(3)
    for s, y in pairs:
        history.add(s, y)
    s = torch.randn(n, generator=g)
    history.add(s, -s)                                    # negative curvature
    kept = pairs[-2:]                                     # 3 slots: one now holds the blanked pair
    grad = torch.randn(n, generator=g)
    expected = _two_loop_reference(grad, kept)
    torch.testing.assert_close(history.direction(grad).double(), expected, rtol=1e-5,
                               atol=1e-6 * float(expected.abs().max()))
    history.add(torch.full((n,), float("nan")), torch.ones(n))   # NaN: blanked, nothing poisoned
    assert torch.isfinite(history.direction(grad)).all()
    s, y = kept[-1]
    assert float(history.gamma) == pytest.approx(float(s.dot(y) / y.dot(y)))


def test_a_tentative_pair_is_used_at_once_and_a_discarded_one_leaves_no_trace():
    """lbfgs() stores the pair of a step before it knows the step's loss: the direction then
    includes it; discard() restores the old direction (no older pair was overwritten), commit()
    keeps it."""
    g = torch.Generator().manual_seed(7)
    n = 16
    pairs = _curvature_pairs(_random_hessian(n, g), 5, g)
    history = _History(3)
    for s, y in pairs[:4]:                                  # the ring has wrapped
        history.add(s, y)
    grad = torch.randn(n, generator=g)
    tolerance = dict(rtol=1e-5, atol=1e-6)
    before = history.direction(grad)
    torch.testing.assert_close(before.double(), _two_loop_reference(grad, pairs[1:4]), **tolerance)
    history.add(*pairs[4], tentative=True, next_grad=grad)   # products with grad in the same pass
    torch.testing.assert_close(history.direction(grad).double(), _two_loop_reference(grad, pairs[2:5]), **tolerance)
    torch.testing.assert_close(history.direction(grad), history.direction(grad.clone()))   # cached = fresh
    history.discard()
    torch.testing.assert_close(history.direction(grad), before, rtol=1e-6, atol=1e-7)
    assert history.count == 4
    history.add(*pairs[4], tentative=True)
    history.commit()
    assert history.count == 5
    torch.testing.assert_close(history.direction(grad).double(), _two_loop_reference(grad, pairs[2:5]), **tolerance)


def test_a_loss_given_as_a_callable_gives_the_same_run_and_is_read_once():
    reads = []

    def bowl(x, lazy):
        loss = float((torch.arange(1.0, 7.0) * x * x).sum())
        if not lazy:
            return loss, 2 * torch.arange(1.0, 7.0) * x
        reads.append(0)
        index = len(reads) - 1

        def read():
            reads[index] += 1
            return loss
        return read, 2 * torch.arange(1.0, 7.0) * x

    x0 = torch.linspace(-1, 1, 6)
    eager = lbfgs(lambda x: bowl(x, False), x0, max_evals=15)
    lazy = lbfgs(lambda x: bowl(x, True), x0, max_evals=15)
    assert torch.equal(eager, lazy)
    assert reads == [1] * 15


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

    calls = []

    def stop_on_third(x):
        calls.append(x)
        if len(calls) == 3:
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
