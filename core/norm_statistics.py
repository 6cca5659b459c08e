"""Instance norm whose statistics can be recorded in one pass and replayed in another.

With statistics frozen from the whole image every layer of a generator is local, so tiles run
with them are identical to the untiled result (the inference engine, :mod:`ganstyle.core.stylize`,
relies on it). The mode travels in a :class:`contextvars.ContextVar`, so the model itself holds no
mutable state and two threads can stylise with the same model at once.
"""
from __future__ import annotations

import contextlib
import contextvars

import torch
import torch.nn as nn
import torch.nn.functional as F

_NORM_MODE: contextvars.ContextVar = contextvars.ContextVar("ganstyle_norm_mode", default=None)


class NormStatistics:
    """Per-layer instance-norm statistics of one batch: ``{norm_module: (mean, var)}``, each
    (B, C, 1, 1) float32.

    >>> stats = NormStatistics()
    >>> with stats.record():              # doctest: +SKIP
    ...     _ = model(whole_image)
    >>> with stats.frozen():              # doctest: +SKIP
    ...     tile_out = model(tile)          # uses the whole image's statistics
    """

    def __init__(self):
        self.stats: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}
        self._pending: dict = {}   # gathering: {module: (count, mean, sum of squared deviations)}

    @contextlib.contextmanager
    def _mode(self, kind: str, record_into: NormStatistics | None = None):
        token = _NORM_MODE.set((kind, self, record_into))
        try:
            yield self
        finally:
            _NORM_MODE.reset(token)

    def record(self):
        """Norm layers normalise as usual and store their statistics here."""
        return self._mode("record")

    def frozen(self, record_into: NormStatistics | None = None):
        """Norm layers normalise with the statistics stored here; with ``record_into``, each layer
        also measures its input's own statistics and stores them there (one pass does both)."""
        return self._mode("frozen", record_into)

    def gathering(self, region: tuple[int, int, int, int], crop_size: tuple[int, int], align: int):
        """Exact statistics of an image too large for one pass, one norm layer per pass over its
        tiles: layers that have statistics use them (frozen); the first layer without adds the
        mean/variance of its input over ``region`` = (y0, y1, x0, x1) of the tile (input pixels
        of a crop of ``crop_size``, padded by the generator to a multiple of ``align``; an end at
        the crop's edge extends over that padding) to a running total, then stops the pass with
        :class:`StatisticsGathered`. After the last tile, :meth:`finish_layer` stores the layer's
        statistics. Regions of all tiles must partition the image."""
        self._region = (region, crop_size, align)
        return self._mode("gather")

    def _add(self, module: nn.Module, x: torch.Tensor, weights: torch.Tensor | None = None) -> None:
        (y0, y1, x0, x1), (h, w), align = self._region
        padded_h, padded_w = h + (-h) % align, w + (-w) % align
        sy, sx = padded_h // x.shape[-2], padded_w // x.shape[-1]   # the layer's stride
        rows = slice(y0 // sy, None if y1 >= h else y1 // sy)
        cols = slice(x0 // sx, None if x1 >= w else x1 // sx)
        part = x[..., rows, cols]
        if weights is None:
            var, mean = torch.var_mean(part.float(), dim=(2, 3), correction=0)       # (B, C)
            n = part.shape[-2] * part.shape[-1]
            mean, m2 = mean.double(), var.double() * n
        else:   # per-region statistics: (B, K, C), each region's pixels weighted by its map
            n, mean, m2 = _weighted_moments(part, weights[..., rows, cols])
        total = self._pending.get(module)
        if total is None:
            self._pending[module] = (n, mean, m2)
            return
        # Chan et al.'s pairwise update: exact for any partition (and for weighted counts), stable in float64
        n0, mean0, m20 = total
        delta = mean - mean0
        count = n0 + n
        safe = count if weights is None else count.clamp(min=1e-12)
        self._pending[module] = (count, mean0 + delta * (n / safe), m20 + m2 + delta ** 2 * (n0 * n / safe))

    def finish_layer(self) -> bool:
        """Store the layer gathered over all tiles; False when the pass gathered nothing (every
        layer already had its statistics)."""
        pending, self._pending = self._pending, {}
        for module, (n, mean, m2) in pending.items():
            var = m2 / n if isinstance(n, int) else m2 / n.clamp(min=1e-12)
            self.stats[module] = (mean.float()[..., None, None], var.float()[..., None, None])
        return bool(pending)

    def __len__(self) -> int:
        return len(self.stats)


class StatisticsGathered(Exception):
    """Ends a :meth:`NormStatistics.gathering` pass: the rest of the network is not needed."""


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d(affine=True)`` (same parameters and state-dict keys) whose statistics
    can be recorded or frozen through :class:`NormStatistics`. Without a context it is plain
    instance norm."""

    def __init__(self, channels: int):
        super().__init__(channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or (_NORM_MODE.get() is None and not _is_channels_last(x)):
            return super().forward(x)  # the native kernel: fastest for NCHW
        mean, var = self.statistics(x)
        return _normalize(x, mean, var, self.weight.float().view(1, -1, 1, 1), self.bias.float().view(1, -1, 1, 1),
                          self.eps)

    def statistics(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image channel mean and variance, each (B, C, 1, 1) float32, as the current
        :class:`NormStatistics` mode says: measured (and, recording, stored), frozen, or gathered
        (which stops the pass with :class:`StatisticsGathered`). With ``weights`` (B, K, H, W)
        (style regions), per region: (B, K, C, 1, 1), each over its region's pixels."""
        kind, store, record_into = _NORM_MODE.get() or ("plain", None, None)
        if kind == "gather":
            if self not in store.stats:   # the layer this pass gathers: its share, then stop
                store._add(self, x, weights)
                raise StatisticsGathered
            kind = "frozen"
        if kind == "frozen":
            if record_into is not None and weights is None:
                var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
                record_into.stats[self] = (mean.float(), var.float())
            try:
                return store.stats[self]
            except KeyError:
                raise RuntimeError("frozen norm statistics were recorded with another model") from None
        if weights is not None:
            n, mean, m2 = _weighted_moments(x, weights)
            mean, var = mean.float()[..., None, None], (m2 / n.clamp(min=1e-12)).float()[..., None, None]
        else:
            # channels_last (NHWC) input: F.instance_norm would copy it to NCHW and back
            var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
            mean, var = mean.float(), var.float()
        if kind == "record":
            store.stats[self] = (mean, var)
        return mean, var


class StyleCondition:
    """Which styles a style library's norm layers apply, set by the generator for one forward pass.

    ``weights``: (B, S) style weights per image, or ``maps``: (B, S, H, W) style weights per pixel
    at the (padded) input resolution, each layer averaging them down to its own resolution (the
    sizes divide exactly: the generator pads its input to a multiple of its stride)."""

    def __init__(self, weights: torch.Tensor | None = None, maps: torch.Tensor | None = None):
        self.weights, self.maps = weights, maps
        self._resized: dict[tuple[int, int], torch.Tensor] = {}

    def maps_at(self, size: tuple[int, int]) -> torch.Tensor:
        size = tuple(size)
        if size not in self._resized:
            h, w = self.maps.shape[-2:]
            self._resized[size] = (self.maps if (h, w) == size else
                                   F.avg_pool2d(self.maps, (h // size[0], w // size[1])))
        return self._resized[size]


_STYLE_CONDITION: contextvars.ContextVar = contextvars.ContextVar("ganstyle_style_condition", default=None)


@contextlib.contextmanager
def style_condition(condition: StyleCondition):
    token = _STYLE_CONDITION.set(condition)
    try:
        yield condition
    finally:
        _STYLE_CONDITION.reset(token)


class ConditionalInstanceNorm2d(InstanceNorm2d):
    """Instance norm with one scale/shift per style (Dumoulin et al. 2017, "A Learned
    Representation for Artistic Style"): ``weight`` and ``bias`` are (S, C). The styles applied
    come from the :class:`StyleCondition` the generator sets: a weighted mix per image (a blend)
    or per pixel (regions). Statistics record/freeze/gather exactly as :class:`InstanceNorm2d`.

    >>> norm = ConditionalInstanceNorm2d(4, num_styles=3)
    >>> with style_condition(StyleCondition(weights=torch.tensor([[0.0, 1.0, 0.0]]))):
    ...     tuple(norm(torch.rand(1, 4, 8, 8)).shape)
    (1, 4, 8, 8)
    """

    def __init__(self, channels: int, num_styles: int):
        super().__init__(channels)
        self.num_styles = num_styles
        self.weight = nn.Parameter(torch.ones(num_styles, channels))
        self.bias = nn.Parameter(torch.zeros(num_styles, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        condition = _STYLE_CONDITION.get()
        if condition is None:
            raise RuntimeError("a style library's norm layer ran without a style condition")
        if condition.maps is None:                                   # one mix per image
            mean, var = self.statistics(x)
            gamma = (condition.weights.float() @ self.weight.float())[..., None, None]     # (B, C, 1, 1)
            beta = (condition.weights.float() @ self.bias.float())[..., None, None]
            return _normalize(x, mean, var, gamma, beta, self.eps)
        # Regions: each style k normalises with the statistics of its own region (weighted by
        # its map), so a region looks as that style would make it, whatever lies next to it:
        # y = Σ_k m_k · (γ_k (x − μ_k) / σ_k + β_k), as one scale map and one shift map.
        maps = condition.maps_at(x.shape[-2:])                                          # (B, K, h, w)
        mean, var = self.statistics(x, maps)                                            # (B, K, C, 1, 1)
        k_scale = self.weight.float()[None] * torch.rsqrt(var + self.eps)[..., 0, 0]   # (B, K, C)
        k_shift = self.bias.float()[None] - mean[..., 0, 0] * k_scale
        b, k, h, w = maps.shape
        # one matrix product gives both maps: (B, 2C, K) @ (B, K, h·w)
        both = torch.bmm(torch.cat([k_scale, k_shift], 2).transpose(1, 2), maps.reshape(b, k, h * w))
        scale, shift = both.to(x.dtype).view(b, 2, -1, h, w).unbind(1)
        return torch.addcmul(shift, x, scale)


def _normalize(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
               eps: float) -> torch.Tensor:
    """``gamma · (x − mean) / √(var + eps) + beta`` as one fused multiply-add in x's dtype (the
    per-channel factors in float32; all (B or 1, C, 1, 1))."""
    scale = gamma * torch.rsqrt(var + eps)
    shift = beta - mean * scale
    return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))


def _weighted_moments(x: torch.Tensor, weights: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per region k: (weight sum n (B, K, 1), weighted mean (B, K, C), weighted sum of squared
    deviations (B, K, C)) of x (B, C, H, W) under weights (B, K, H, W), in float64.

    The sums are float32 matrix products over the pixels, taken about each channel's overall mean
    (so neither the mean nor the variance loses digits when a channel's mean is large against its
    spread): three reads of x, about the cost of a plain variance."""
    b, c = x.shape[:2]
    pixels = x.reshape(b, c, -1).float()                                              # (B, C, N)
    w = weights.reshape(b, weights.shape[1], -1).float().transpose(1, 2)              # (B, N, K)
    n = w.sum(1).double()[..., None]                                                  # (B, K, 1)
    sums = torch.bmm(pixels, w).double()                                              # (B, C, K)
    centre = (sums.sum(2, keepdim=True) / n.sum(1, keepdim=True).clamp(min=1e-12)).float()  # (B, C, 1)
    deviation = pixels - centre
    offsets = torch.bmm(deviation, w).double().transpose(1, 2) / n.clamp(min=1e-12)   # (B, K, C): mean − centre
    squares = torch.bmm(deviation.square_(), w).double().transpose(1, 2)              # Σ w (x − centre)²
    mean = centre.double().transpose(1, 2) + offsets
    m2 = (squares - n * offsets ** 2).clamp(min=0)
    return n, mean, m2


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
