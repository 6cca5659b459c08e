"""core.optimize.preconditioner: the spectral low-pass filter L-BFGS optimises through."""
import pytest
import torch

from ganstyle.core.optimize import SpectralPreconditioner


@pytest.mark.parametrize("height, width", [(13, 10), (8, 9), (1, 6)])
def test_spectral_preconditioner_is_a_symmetric_low_pass(height, width):
    w_cutoff = 1.0   # cycles per image: these images are tiny (the default is for real sizes)
    w = SpectralPreconditioner(height, width, torch.device("cpu"), cutoff=w_cutoff)
    # float64: the inner products below cancel to ~0.2 from terms of ~1, and float32 FFT rounding
    # alone can then exceed rel=1e-5
    a, b = torch.randn(2, 1, 3, height, width, generator=torch.Generator().manual_seed(0),
                       dtype=torch.float64).unbind(0)
    # Wᵀ = W: L-BFGS on z then gets the exact gradient W·∂loss/∂x of loss(x0 + W·z)
    assert float((w(a) * b).sum()) == pytest.approx(float((a * w(b)).sum()), rel=1e-5)
    flat = torch.full((1, 3, height, width), 0.7)
    assert torch.allclose(w(flat), flat, atol=1e-6)                 # large areas move freely
    stripes = (torch.arange(width) % 2 * 2.0 - 1).expand(1, 3, height, width)
    if width % 2 == 0:   # a 2 px period: width / 2 cycles per image, far above the cutoff
        expected = (1 + (max(height, width) / 2 / w_cutoff) ** 2) ** -0.25
        assert float(w(stripes).abs().max()) == pytest.approx(expected, rel=1e-3)
        assert expected < 0.75
