"""The spectral preconditioner: L-BFGS optimises z with the image x = x0 + W·z, W a fixed
low-pass filter (measurements: docs/benchmarks.md)."""
from __future__ import annotations

import torch

# The frequency scale (cycles per image along the long side) and steepness of the filter.
CUTOFF = 5.0
EXPONENT = 0.5


class SpectralPreconditioner:
    """The symmetric low-pass filter W that L-BFGS sees the image through (x = x0 + W·z).

    W scales each spatial frequency f by ``(1 + (f / cutoff)²)^(-exponent/2)``, f and the cutoff in
    cycles per image (along the long side): 1 for flat areas, about (cutoff / f)^½ for patterns
    much finer than the cutoff. Gradient methods on raw pixels move fine detail first and large
    areas slowly (the loss is much stiffer along high frequencies); L-BFGS only learns that from
    its few history pairs. Through W it starts from an estimate that already trusts broad changes
    more (a Sobolev gradient), so it needs fewer evaluations for the same loss.

    The cutoff is a number of cycles per image, not per pixel: the best one measured scales
    with the image (docs/benchmarks.md).
    W is real and even in frequency, so Wᵀ = W.

    images: (..., height, width) float32 → same shape.

    >>> w = SpectralPreconditioner(64, 64, torch.device("cpu"))
    >>> flat = torch.ones(1, 3, 64, 64)
    >>> torch.allclose(w(flat), flat)        # DC passes unchanged
    True
    >>> checker = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 * 2.0 - 1
    >>> round(float(w(checker).abs().max()), 2)   # the finest pattern is damped
    0.33
    """

    def __init__(self, height: int, width: int, device: torch.device,
                 cutoff: float = CUTOFF, exponent: float = EXPONENT):
        long_side = max(height, width)
        fy = torch.fft.fftfreq(height, device=device)[:, None] * long_side   # cycles per image
        fx = torch.fft.rfftfreq(width, device=device)[None, :] * long_side
        self.size = (height, width)
        self.gain = (1 + (fy ** 2 + fx ** 2) / cutoff ** 2) ** (-exponent / 2)   # (height, width//2+1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(torch.fft.rfft2(images) * self.gain, s=self.size)
