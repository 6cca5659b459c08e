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
    def _mode(self, kind: str):
        token = _NORM_MODE.set((kind, self))
        try:
            yield self
        finally:
            _NORM_MODE.reset(token)

    def record(self):
        """Norm layers normalise as usual and store their statistics here."""
        return self._mode("record")

    def frozen(self):
        """Norm layers normalise with the statistics stored here."""
        return self._mode("frozen")

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

    def _add(self, module: nn.Module, x: torch.Tensor) -> None:
        (y0, y1, x0, x1), (h, w), align = self._region
        padded_h, padded_w = h + (-h) % align, w + (-w) % align
        sy, sx = padded_h // x.shape[-2], padded_w // x.shape[-1]   # the layer's stride
        part = x[..., y0 // sy:(None if y1 >= h else y1 // sy), x0 // sx:(None if x1 >= w else x1 // sx)]
        var, mean = torch.var_mean(part.float(), dim=(2, 3), correction=0)       # (B, C)
        n = part.shape[-2] * part.shape[-1]
        mean, m2 = mean.double(), var.double() * n
        total = self._pending.get(module)
        if total is None:
            self._pending[module] = (n, mean, m2)
            return
        # Chan et al.'s pairwise update: exact for any partition, stable in float64
        n0, mean0, m20 = total
        delta = mean - mean0
        count = n0 + n
        self._pending[module] = (count, mean0 + delta * (n / count), m20 + m2 + delta ** 2 * (n0 * n / count))

    def finish_layer(self) -> bool:
        """Store the layer gathered over all tiles; False when the pass gathered nothing (every
        layer already had its statistics)."""
        pending, self._pending = self._pending, {}
        for module, (n, mean, m2) in pending.items():
            self.stats[module] = (mean.float()[..., None, None], (m2 / n).float()[..., None, None])
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
        mode = _NORM_MODE.get()
        if self.training or (mode is None and not _is_channels_last(x)):
            return super().forward(x)  # the native kernel: fastest for NCHW
        kind, store = mode if mode is not None else ("plain", None)
        if kind == "gather":
            if self not in store.stats:   # the layer this pass gathers: its share, then stop
                store._add(self, x)
                raise StatisticsGathered
            kind = "frozen"
        if kind == "frozen":
            try:
                mean, var = store.stats[self]
            except KeyError:
                raise RuntimeError("frozen norm statistics were recorded with another model") from None
        else:
            # channels_last (NHWC) input: F.instance_norm would copy it to NCHW and back
            var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
            mean, var = mean.float(), var.float()
            if kind == "record":
                store.stats[self] = (mean, var)
        scale = self.weight.float().view(1, -1, 1, 1) * torch.rsqrt(var + self.eps)
        shift = self.bias.float().view(1, -1, 1, 1) - mean * scale
        return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
