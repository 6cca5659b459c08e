"""The optimiser's loss for one content image at one size (:class:`StyleObjective`): relative
content and Gram style errors (:mod:`ganstyle.core.losses`, shared with the trainer), total
variation and a penalty on pixels outside [0, 1].

Normalised losses: Gram matrices and feature MSEs are means over pixels, so they do not grow with
the image, and each term is divided by the size of its target (content loss by mean(target²),
each layer's Gram loss by mean(target Gram²)): every term is a relative error of order 1 whatever
the encoder, the layer or the resolution, so one set of default weights works from 256 px to
print size.

On a GPU an untiled evaluation (forward, losses, backward) is captured once as a CUDA graph and
replayed (:mod:`ganstyle.core.cuda_graph`). When one pass would not fit the memory budget the
VGG part runs over tiles (:mod:`.tiling`): a first pass without gradients sums each tile's Gram
contribution into the exact global Grams, a second backpropagates each tile's share of the loss
(its contribution weighted by ∂loss/∂Gram).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from ..cuda_graph import capture
from ..device import read_later
from ..errors import InputError
from ..features import StyleFeatures, gram_matrix
from ..losses import content_loss, gram_error, relative_content_loss, relative_style_weights, total_variation
from ..vgg import CONTENT_LAYER, VGGEncoder
from .options import OptimizeOptions
from .tiling import plan_tiles

# Pixels leaving [0, 1] are pulled back by a quadratic penalty (clamping the parameter between
# L-BFGS iterations would break its curvature history); the result is clamped at the end.
_RANGE_PENALTY = 100.0
LOSS_NAMES = ("total", "content", "style", "tv")


def check_inputs(encoder: VGGEncoder, content, style, options: OptimizeOptions) -> None:
    """Raise :class:`InputError` for inputs :func:`~ganstyle.core.optimize.optimize_stylize`
    cannot use, saying what to do."""
    if not isinstance(content, torch.Tensor) or content.dim() != 4 or content.shape[1] != 3:
        shape = tuple(content.shape) if isinstance(content, torch.Tensor) else type(content).__name__
        raise InputError(f"content must be RGB images shaped (B, 3, H, W) in [0, 1], got {shape}")
    if content.shape[0] == 0 or content.shape[-1] == 0 or content.shape[-2] == 0:
        raise InputError(f"content batch is empty (shape {tuple(content.shape)})")
    if not torch.isfinite(content).all():
        raise InputError("content image contains NaN or Inf values")
    if not isinstance(style, StyleFeatures):
        raise InputError(f"style must be StyleFeatures (from compute_style_features), got {type(style).__name__}")
    style.check_encoder(encoder)
    missing = [n for n in (CONTENT_LAYER, *style.layers) if n not in encoder.layer_names]
    if missing:
        raise InputError(f"the encoder ({encoder.arch} up to {encoder.deepest}) does not compute layers "
                         f"{missing}; load it with deepest='relu5_1'")
    if options.init == "content_colored" and (style.color_mean is None or style.color_cov is None):
        raise InputError("init='content_colored' needs the style's colour statistics, which these "
                         "StyleFeatures lack; recompute them with compute_style_features")


def clone_style(style: StyleFeatures, device) -> StyleFeatures:
    """Ordinary fp32 copies of the style's tensors on ``device`` (they may be inference tensors)."""
    clone = lambda d: {k: v.detach().clone().to(device, torch.float32) for k, v in d.items()}  # noqa: E731
    opt = lambda t: None if t is None else t.detach().clone().to(device, torch.float32)  # noqa: E731
    return dataclasses.replace(style, grams=clone(style.grams), means=clone(style.means),
                               stds=clone(style.stds), color_mean=opt(style.color_mean),
                               color_cov=opt(style.color_cov))


def objective_settings(style: StyleFeatures, options: OptimizeOptions,
                       autocast_dtype: torch.dtype | None) -> dict:
    """Everything about the loss that does not depend on the scale: keyword arguments of
    :class:`StyleObjective`."""
    raw = options.style_layer_weights or {name: 1.0 for name in style.layers}
    unknown = sorted(set(raw) - set(style.layers))
    if unknown:
        raise InputError(f"style_layer_weights names layers {unknown} that the style features do not "
                         f"have (they have {list(style.layers)})")
    # Weights normalised to sum to 1, each divided by its target Gram's mean square (a relative
    # error), so every layer counts alike whatever its magnitude.
    total = sum(raw.values())
    layer_weights = relative_style_weights(style.grams, {name: float(w) / total for name, w in raw.items()})
    return dict(grams={k: style.grams[k] for k in layer_weights}, layer_weights=layer_weights,
                content_weight=options.content_weight, style_weight=options.style_weight,
                tv_weight=options.tv_weight, tile_size=options.tile_size, autocast_dtype=autocast_dtype,
                cuda_graph=options.cuda_graph)


class StyleObjective:
    """The loss of :func:`~ganstyle.core.optimize.optimize_stylize` for one content image
    (1, 3, H, W) at one size.

    ``evaluate(x)`` takes an image (1, 3, H, W) that requires grad, fills ``x.grad`` and returns
    the terms as floats: {"total", "content", "style", "tv"}; ``evaluate_later(x)`` returns a
    function giving them, so a caller can queue more device work before it waits. The VGG part
    is computed over the whole image, or tile by tile when one pass would not fit the memory
    budget; both give the same numbers. Build it with :meth:`create`.
    """

    @classmethod
    def create(cls, encoder: VGGEncoder, content: torch.Tensor, style: StyleFeatures,
               options: OptimizeOptions | None = None) -> StyleObjective:
        """content: (1, 3, H, W) in [0, 1] on the encoder's device, at the size to optimise.
        Call outside inference mode (see :func:`~ganstyle.core.optimize.optimize_stylize`)."""
        options = (options or OptimizeOptions()).checked()
        check_inputs(encoder, content, style, options)
        return cls(encoder, content, **objective_settings(style, options, None))

    def __init__(self, encoder: VGGEncoder, content: torch.Tensor, *, grams, layer_weights,
                 content_weight, style_weight, tv_weight, tile_size, autocast_dtype, cuda_graph=False):
        self.encoder = encoder
        self.use_graph = cuda_graph and encoder.device.type == "cuda"
        self._graph = None   # the captured evaluation (see _evaluate_graphed)
        self.grams = grams
        self.layer_weights = layer_weights
        self.content_weight, self.style_weight, self.tv_weight = content_weight, style_weight, tv_weight
        self.autocast_dtype = autocast_dtype
        self.style_layers = list(grams)
        self.layers = list(dict.fromkeys([CONTENT_LAYER, *self.style_layers]))
        h, w = content.shape[-2:]
        self.tiles = plan_tiles(encoder, h, w, self.layers, tile_size, autocast_dtype)
        with torch.no_grad():
            self.content_target = self._features_no_grad(content, [CONTENT_LAYER])[CONTENT_LAYER]
        # the relative content error's denominator, for the tiled sum (relative_content_loss untiled)
        self.content_scale = float(self.content_target.float().pow(2).mean()) or 1.0
        self.temporal_target = self.temporal_weights = None

    def set_temporal(self, target: torch.Tensor, weights: torch.Tensor) -> None:
        """Video (Ruder et al. 2016): add ``weights · |x − target|²`` (squared colour distance,
        averaged over pixels) to the loss, where
        ``target`` (1, 3, H, W) is the previous frame's result moved into this frame and ``weights``
        (1, 1, H, W) is the temporal weight where that is trusted (0 at occlusions)."""
        self.temporal_target = target.detach().float()
        self.temporal_weights = weights.detach().float()

    # -- helpers ---------------------------------------------------------------------------
    def _forward(self, images: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        if self.autocast_dtype is None:
            return self.encoder(images, layers)
        # bf16 convolutions are fastest in channels-last layout (cuDNN and oneDNN/AMX alike)
        # (no autocast weight cache: cached casts must not outlive a CUDA graph capture)
        with torch.autocast(device_type=images.device.type, dtype=self.autocast_dtype, cache_enabled=False):
            return self.encoder(images.contiguous(memory_format=torch.channels_last), layers)

    def _features_no_grad(self, images, layers) -> dict[str, torch.Tensor]:
        """Whole-image features, assembled from tile cores when tiling (for the content target)."""
        if self.tiles is None:
            return {k: v.float() for k, v in self._forward(images, layers).items()}
        out: dict[str, torch.Tensor] = {}
        for tile in self.tiles:
            feats = self._forward(tile.crop(images), layers)
            for name in layers:
                core, (y0, y1, x0, x1) = tile.core(name, feats[name])
                if name not in out:
                    s = tile.stride(name)
                    h, w = images.shape[-2] // s, images.shape[-1] // s
                    out[name] = torch.empty(1, core.shape[1], h, w, device=core.device)
                out[name][..., y0:y1, x0:x1] = core.float()
        return out

    def _style_loss(self, grams: dict[str, torch.Tensor]) -> torch.Tensor:
        return gram_error(grams, self.grams, self.layer_weights)

    # -- evaluation --------------------------------------------------------------------------
    def evaluate(self, image: torch.Tensor) -> dict[str, float]:
        return self.evaluate_later(image)()

    def evaluate_later(self, image: torch.Tensor) -> Callable[[], dict[str, float]]:
        """Like :meth:`evaluate`, but the losses come from the returned function, which waits for
        the device only when called: the caller can queue more GPU work first. ``image.grad`` is
        set (as a queued result) before this returns."""
        if image.is_leaf:   # the common case: the gradient goes straight to image.grad (replaced)
            image.grad = None
            return self._evaluate_leaf(image)
        # An image built from a parameterisation: evaluate a leaf copy (so tiles can backpropagate
        # one by one), then hand its gradient to the image's own graph in one go.
        x = image.detach().requires_grad_(image.requires_grad)
        losses = self._evaluate_leaf(x)
        if image.requires_grad:
            torch.autograd.backward(image, x.grad)
        return losses

    def _evaluate_leaf(self, x: torch.Tensor) -> Callable[[], dict[str, float]]:
        if self.tiles is None and x.requires_grad and self.use_graph and self._graph_ready(x):
            terms = self._evaluate_graphed(x)
        else:
            terms = self._terms(x)
            if x.requires_grad:
                terms[0].backward()
        return _losses_later(terms.detach())

    def _terms(self, x: torch.Tensor) -> torch.Tensor:
        """(4,) tensor: total, content, style and tv terms of x. Nothing is read back from the
        device, so this can be captured in a CUDA graph (untiled)."""
        if self.tiles is None:
            feats = self._forward(x, self.layers)
            c_loss = relative_content_loss(feats[CONTENT_LAYER], self.content_target)
            # Under mixed precision the Gram products run in bf16 too (fp32 accumulation), on the
            # channels-last features as they are (no layout copy).
            dtype = None if self.autocast_dtype is not None else torch.float32
            s_loss = self._style_loss({n: gram_matrix(feats[n], dtype)[0] for n in self.style_layers})
        else:
            c_loss, s_loss = self._evaluate_tiled(x)
        tv = total_variation(x)
        out_of_range = (x - x.clamp(0, 1)).pow(2).mean()
        total = (self.content_weight * c_loss + self.style_weight * s_loss + self.tv_weight * tv
                 + _RANGE_PENALTY * out_of_range)
        if self.temporal_target is not None:
            total = total + (self.temporal_weights * (x - self.temporal_target).pow(2)).mean() * 3
        return torch.stack([total, c_loss.to(total), torch.as_tensor(s_loss).to(total), tv.to(total)])

    def _terms_and_gradient(self, x: torch.Tensor) -> torch.Tensor:
        terms = self._terms(x)
        terms[0].backward()
        return terms.detach()

    def _graph_ready(self, x: torch.Tensor) -> bool:
        """Capture the evaluation graph on the first call (a scale's shapes never change). If
        capture fails, evaluate eagerly from then on."""
        if self._graph is None:
            self._graph = capture(self._terms_and_gradient, x, requires_grad=True)
            self.use_graph = self._graph is not None
        return self.use_graph

    def _evaluate_graphed(self, x: torch.Tensor) -> torch.Tensor:
        """Loss terms and x.grad by replaying the CUDA graph of :meth:`_terms` + backward: that
        skips launching ~300 kernels one by one."""
        terms = self._graph.replay(x)
        x.grad = self._graph.static_input.grad.clone()   # the next replay overwrites it
        return terms                     # copied to the host (queued) before the next replay

    def _evaluate_tiled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Style and content loss over tiles. With ``x.requires_grad`` their gradient is accumulated
        into ``x.grad`` here, tile by tile; they are returned as constants either way (the caller
        adds and backpropagates only the pixel terms)."""
        # Pass 1 (no gradients): exact global Gram matrices from the tiles' core regions.
        gram_sums = {n: 0.0 for n in self.style_layers}
        positions = {n: 0 for n in self.style_layers}
        with torch.no_grad():
            for tile in self.tiles:
                feats = self._forward(tile.crop(x), self.style_layers)
                for name in self.style_layers:
                    core, _ = tile.core(name, feats[name])
                    f = core.float().flatten(2)[0]               # (C, P)
                    gram_sums[name] = gram_sums[name] + f @ f.T
                    positions[name] += f.shape[1]
        norms = {n: self.grams[n].shape[-1] * positions[n] for n in self.style_layers}   # C·H·W
        grams = {n: (gram_sums[n] / norms[n]).requires_grad_(x.requires_grad) for n in self.style_layers}
        s_loss = self._style_loss(grams)
        if not x.requires_grad:
            with torch.no_grad():
                content = self._features_no_grad(x, [CONTENT_LAYER])[CONTENT_LAYER]
            return relative_content_loss(content, self.content_target), s_loss
        d_grams = dict(zip(self.style_layers, torch.autograd.grad(s_loss, list(grams.values()))))
        # Pass 2: each tile backpropagates ⟨∂L/∂G, its share of G⟩ plus its share of the content loss.
        content_norm = self.content_target.numel() * self.content_scale
        content_sum = 0.0
        for tile in self.tiles:
            feats = self._forward(tile.crop(x), self.layers)
            share = 0.0
            for name in self.style_layers:
                core, _ = tile.core(name, feats[name])
                f = core.float().flatten(2)[0]
                share = share + (d_grams[name] * (f @ f.T)).sum() / norms[name]
            core, (y0, y1, x0, x1) = tile.core(CONTENT_LAYER, feats[CONTENT_LAYER])
            diff_sq = content_loss(core, self.content_target[..., y0:y1, x0:x1], reduction="sum")
            content_sum += float(diff_sq.detach())
            share = self.style_weight * share + self.content_weight * diff_sq / content_norm
            share.backward()
        return torch.tensor(content_sum / content_norm), s_loss.detach()


def _losses_later(terms: torch.Tensor) -> Callable[[], dict[str, float]]:
    """terms: (4,) total, content, style, tv on any device → a function returning them by name.
    One read-back of all four numbers (each float() would wait for the device), queued at once
    (:func:`read_later`), before later work can overwrite a CUDA graph's output."""
    read = read_later(terms)

    def losses() -> dict[str, float]:
        result = dict(zip(LOSS_NAMES, read()))
        if not math.isfinite(result["total"]):
            raise InputError(f"the loss became {result['total']} (NaN/Inf); lower lr or use "
                             f"mixed_precision='fp32'")
        return result
    return losses
