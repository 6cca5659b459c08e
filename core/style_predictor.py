"""Any style in one pass: predict a conditional-norm generator's scales and shifts from the style
image's VGG statistics (Ghiasi et al. 2017, "Exploring the structure of a real-time, arbitrary
neural artistic stylization network").

An *arbitrary-style* generator (``GeneratorConfig.style_embedding`` = D > 0) is a style library
whose norm tables have D + 1 rows: every norm layer's scale and shift are ``[e, 1] @ table``,
linear in a style embedding ``e`` (D,) that :class:`StylePredictor` computes from the style's
:func:`style_vector` (per-channel log mean and log standard deviation of the VGG features at
``relu1_1 … relu5_1``). Given one or more styles, :meth:`StyleGenerator.for_styles
<ganstyle.core.generator.StyleGenerator.for_styles>` folds the embeddings into an ordinary
single-style generator (or a library of K styles, for masks), so inference costs what a trained
style costs.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .errors import InputError

# The style statistics the predictor reads (VGG16 and VGG19 have the same widths there).
VECTOR_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
VECTOR_CHANNELS = (64, 128, 256, 512, 512)
STYLE_VECTOR_SIZE = 2 * sum(VECTOR_CHANNELS)
# Features are ≥ 0 after a ReLU; the floor keeps log() finite for channels that never fire.
_LOG_FLOOR = 1e-3


def style_vector(features) -> torch.Tensor:
    """A :class:`~ganstyle.core.features.StyleFeatures` → its predictor input, (STYLE_VECTOR_SIZE,)
    float32: for each of :data:`VECTOR_LAYERS`, log(mean + 1e-3) of every channel, then log(std + 1e-3).

    >>> from ganstyle.core.features import StyleFeatures
    >>> means = {n: torch.ones(c) for n, c in zip(VECTOR_LAYERS, VECTOR_CHANNELS)}
    >>> f = StyleFeatures(VECTOR_LAYERS, {}, means, means, "vgg16:x", "vgg16", 512)
    >>> tuple(style_vector(f).shape)
    (2944,)
    """
    missing = [name for name in VECTOR_LAYERS if name not in features.means or name not in features.stds]
    if missing:
        raise InputError(f"these style features lack layers {missing}; an arbitrary-style model reads "
                         f"{list(VECTOR_LAYERS)} (compute them with the default layers)")
    parts = []
    for name, channels in zip(VECTOR_LAYERS, VECTOR_CHANNELS):
        for stat in (features.means, features.stds):
            value = stat[name].float().reshape(-1)
            if value.numel() != channels:
                raise InputError(f"style features layer {name} has {value.numel()} channels, expected {channels} "
                                 f"(a VGG16/VGG19 encoder)")
            parts.append(torch.log(value.clamp(min=0) + _LOG_FLOOR))
    return torch.cat(parts).cpu()


class StylePredictor(nn.Module):
    """style vectors (B, STYLE_VECTOR_SIZE) → norm-table weights (B, D + 1) = [embedding, 1].

    The input is standardised with ``input_shift`` / ``input_scale`` (buffers set from the training
    styles' vectors by :meth:`standardize`), then a two-layer MLP gives the embedding (D,). The last
    layer starts at zero, so an untrained predictor gives every style the table's last row (the
    "mean style" a generator converted by ``StyleGenerator.arbitrary_from`` starts with).

    >>> p = StylePredictor(embedding=8, hidden=16)
    >>> w = p(torch.randn(2, STYLE_VECTOR_SIZE))
    >>> tuple(w.shape), float(w[0, -1].detach())
    ((2, 9), 1.0)
    """

    def __init__(self, embedding: int, hidden: int):
        super().__init__()
        self.register_buffer("input_shift", torch.zeros(STYLE_VECTOR_SIZE))
        self.register_buffer("input_scale", torch.ones(STYLE_VECTOR_SIZE))
        self.net = nn.Sequential(nn.Linear(STYLE_VECTOR_SIZE, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, embedding))
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        if vectors.dim() != 2 or vectors.shape[1] != STYLE_VECTOR_SIZE:
            raise InputError(f"style vectors must be (B, {STYLE_VECTOR_SIZE}), got {tuple(vectors.shape)}")
        x = (vectors.float() - self.input_shift) / self.input_scale
        embedding = self.net(x.to(self.net[0].weight.dtype)).float()
        return torch.cat([embedding, embedding.new_ones(embedding.shape[0], 1)], dim=1)

    @torch.no_grad()
    def standardize(self, vectors: torch.Tensor) -> None:
        """Set the input standardisation from the training styles' vectors (N, STYLE_VECTOR_SIZE)."""
        self.input_shift.copy_(vectors.float().mean(0))
        self.input_scale.copy_(vectors.float().std(0, unbiased=False).clamp(min=1e-2) if len(vectors) > 1
                               else torch.ones_like(self.input_scale))
