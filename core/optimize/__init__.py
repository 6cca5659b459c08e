"""Optimisation-based style transfer (Gatys et al. 2016): optimise the pixels of an image so its
VGG features match a content image (``relu4_2``) and a style's Gram matrices (``relu1_1`` …
``relu5_1``), with total-variation smoothing.

The entry point is :func:`optimize_stylize` with an :class:`OptimizeOptions`. The parts:

* :mod:`.options`: the options and the coarse-to-fine schedule (:func:`plan_scales`): the image
  is optimised first with its long side at ``start_side`` pixels, then upsampled (×2 per scale)
  and refined with fewer evaluations at each finer scale. The coarse scales fix the composition
  cheaply; the fine scales add detail.
* :mod:`.objective`: the loss (:class:`StyleObjective`): relative content and Gram errors, so
  every term is of order 1 and one set of weights works at any resolution; on a GPU each scale's
  evaluation (forward, losses, backward) is captured once as a CUDA graph and replayed.
* :mod:`.tiling`: when one forward+backward pass would not fit the memory budget
  (:func:`ganstyle.core.device.memory_budget`) or ``tile_size``, the loss is computed over tiles
  that give the same loss and gradient as the whole image, so peak memory is that of one tile
  plus O(pixels) for the image, its gradient and the L-BFGS history.
* :mod:`.lbfgs`: a lean L-BFGS that reads nothing back from the device but the loss, and queues
  the next direction before it waits for it, so a GPU does not sit idle while the host decides;
  its first step is a gradient step of ~1 % of the pixel range.
* :mod:`.preconditioner`: L-BFGS optimises z with the image x = x0 + W·z, W a fixed low-pass
  filter: on raw pixels it first spends many steps learning that broad changes are cheap and fine
  ones stiff; through W it starts out knowing, and needs fewer evaluations for the same loss.
* :mod:`.engine`: the loop over images, scales and evaluations, and progress reports.

Mixed precision: ``mixed_precision="auto"`` runs the VGG forward/backward and the Gram products
under bf16 autocast in channels-last layout where that is fast (CUDA GPUs with bf16, CPUs with
AMX); the products accumulate in fp32, and losses, the L-BFGS state and the image stay fp32.
Results are compared on fp32 losses (:func:`evaluate_losses`). Measurements: docs/benchmarks.md.
"""
from ..device import MIXED_PRECISION_MODES
from .engine import ProgressCallback, StyleTransferCancelled, evaluate_losses, optimize_stylize, optimize_video
from .lbfgs import lbfgs
from .objective import StyleObjective, objective_settings
from .options import INITS, OPTIMIZERS, PRECONDITIONERS, OptimizeOptions, Scale, plan_scales
from .preconditioner import SpectralPreconditioner
from .tiling import Tile, activation_bytes_per_pixel, layer_strides, plan_tiles, receptive_field

__all__ = ["INITS", "MIXED_PRECISION_MODES", "OPTIMIZERS", "PRECONDITIONERS", "OptimizeOptions",
           "ProgressCallback", "Scale", "SpectralPreconditioner", "StyleObjective", "StyleTransferCancelled",
           "Tile", "activation_bytes_per_pixel", "evaluate_losses", "layer_strides", "lbfgs",
           "objective_settings", "optimize_stylize", "optimize_video", "plan_scales", "plan_tiles",
           "receptive_field"]
