"""Which styles of a style library to apply: one, a blend, or different ones in masked regions.

A library (:class:`~ganstyle.core.generator.StyleGenerator` with ``config.styles``) holds one set
of instance-norm scales and shifts per style over shared convolutions. Because instance norm's
affine step is linear in those parameters:

- a **blend** of styles is the single-style generator whose parameters are the weighted mix
  (:meth:`StyleGenerator.mixed`): exactly as fast as any single-style model;
- **regions**: per-pixel style weights (from masks, soft edges allowed) travel as extra input
  channels; each norm layer averages them down to its resolution and mixes the parameters per
  pixel. Only the styles in use are kept (:meth:`StyleGenerator.subset`), so a 2-style mask costs
  two weight channels whatever the library's size, and the transition at a region border is as
  smooth as the network's receptive field (no seam, one pass).

Style specs are written ``"story"``, ``"story:0.7, maps:0.3"`` or given as ``{name: weight}``.

An **arbitrary-style** generator (``config.style_embedding``) takes
:class:`~ganstyle.core.features.StyleFeatures` instead of names, for the whole image and for each
masked region: the predictor folds them into a single-style generator (or a K-style library for
K regions, then as above), cached by the features' values. A blend is a blend of the features
(:func:`~ganstyle.core.features.blend_style_features`).
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from .config import OptionError
from .errors import InputError
from .features import StyleFeatures
from .generator import StyleGenerator
from .model_copies import weights_version

StyleSpec = str | Mapping[str, float] | StyleFeatures


def parse_style_spec(spec: StyleSpec) -> dict[str, float]:
    """``"a"`` → {a: 1}; ``"a:0.7, b:0.3"`` → {a: 0.7, b: 0.3}; a mapping is checked and copied.

    >>> parse_style_spec("story:0.7, maps:0.3")
    {'story': 0.7, 'maps': 0.3}
    """
    if isinstance(spec, Mapping):
        items = list(spec.items())
    else:
        items = []
        for part in str(spec).split(","):
            if not part.strip():
                continue
            name, sep, weight = part.partition(":")
            try:
                items.append((name.strip(), float(weight) if sep else 1.0))
            except ValueError:
                raise InputError(f"style '{part.strip()}': the weight after ':' must be a number") from None
    if not items:
        raise InputError(f"no style named in {spec!r}: give a style name, or NAME:WEIGHT pairs separated by commas")
    weights: dict[str, float] = {}
    for name, weight in items:
        if not name:
            raise InputError(f"style spec {spec!r} has an empty style name")
        if not (weight >= 0 and weight != float("inf")):
            raise InputError(f"style '{name}': weight must be a finite number >= 0, got {weight}")
        weights[name] = weights.get(name, 0.0) + float(weight)
    if sum(weights.values()) <= 0:
        raise InputError(f"style spec {spec!r}: the weights add up to 0")
    return weights


def style_weights(generator: StyleGenerator, spec: StyleSpec, option: str = "style",
                  name: str | None = None) -> torch.Tensor:
    """A style spec → (S,) float32 weights over the library's styles, summing to 1. A style the
    library lacks is an :class:`~ganstyle.core.config.OptionError` about ``option`` (shown as
    ``name``; front-ends put their own name for it)."""
    names = generator.style_names
    weights = parse_style_spec(spec)
    unknown = [n for n in weights if n not in names]
    if unknown:
        raise OptionError.about(option, f"is {spec!r}: unknown style(s) {unknown}; this library has {names}", name)
    vector = torch.tensor([weights.get(n, 0.0) for n in names], dtype=torch.float32)
    return vector / vector.sum()


def weight_maps(generator: StyleGenerator, size: tuple[int, int], batch: int, style: StyleSpec | None,
                regions: Sequence[tuple[torch.Tensor, StyleSpec]]) -> torch.Tensor:
    """(B, S, H, W) per-pixel style weights: ``style`` everywhere (the background; None: the
    regions must cover the image), each region's style where its mask is (a mask is (H', W'),
    (1 or B, H', W') or (1 or B, 1, H', W') in [0, 1], any size: resized bilinearly). Where masks
    add up to more than 1 they share the pixel in proportion; where they add up to less, the
    background takes the rest."""
    shares, styles = _region_shares(generator, size, batch, style, regions)
    return torch.einsum("brhw,rs->bshw", shares, styles)


def _region_shares(generator: StyleGenerator, size: tuple[int, int], batch: int, style: StyleSpec | None,
                   regions: Sequence[tuple[torch.Tensor, StyleSpec]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight maps as a product: (B, R, H, W) share of each region (and of the background,
    last, when ``style`` is given) per pixel, summing to 1, and (R, S) the style weights of each;
    maps = Σ_r share_r · styles_r. Full-resolution work stays at R channels, not S."""
    shares = region_shares(size, batch, style is not None, [mask for mask, _ in regions])
    rows = [style_weights(generator, spec, f"mask_style_{i + 1}", f"the style of mask {i + 1}")
            for i, (_, spec) in enumerate(regions)]
    return shares, torch.stack(rows + ([] if style is None else [style_weights(generator, style)]))


def region_shares(size: tuple[int, int], batch: int, background: bool,
                  masks: Sequence[torch.Tensor]) -> torch.Tensor:
    """(B, R, H, W) share of each mask's region per pixel (and of the background, last, when
    ``background``), summing to 1: masks (any size, resized bilinearly) that add up to more than 1
    share a pixel in proportion; where they add up to less, the background takes the rest."""
    h, w = size
    resized = []
    for i, mask in enumerate(masks):
        m = _mask_as_b1hw(mask, i).float()
        if m.shape[0] not in (1, batch):
            raise InputError(f"mask {i + 1} has {m.shape[0]} images, the batch {batch}: give one mask or one per image")
        if m.shape[-2:] != (h, w):
            m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
        resized.append(m.clamp(0, 1).expand(batch, 1, h, w))
    shares = torch.cat(resized, 1)                                                    # (B, R, H, W)
    total = shares.sum(1, keepdim=True)
    share = total.clamp(min=1.0)
    shares = shares / share
    rest = 1.0 - total / share
    if not background:
        if bool((rest > 1e-3).any()):
            raise InputError("the masks leave part of the image without a style: give a style for the rest "
                             "(the background) too")
        return shares / shares.sum(1, keepdim=True).clamp(min=1e-8)
    return torch.cat([shares, rest], 1)


def _mask_as_b1hw(mask: torch.Tensor, index: int) -> torch.Tensor:
    if not isinstance(mask, torch.Tensor) or mask.dim() not in (2, 3, 4) or (mask.dim() == 4 and mask.shape[1] != 1):
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise InputError(f"mask {index + 1} must be shaped (H, W), (B, H, W) or (B, 1, H, W), got {shape}")
    if mask.numel() == 0 or not torch.isfinite(mask).all():
        raise InputError(f"mask {index + 1} is empty or holds NaN/Inf")
    return mask.view(1, 1, *mask.shape) if mask.dim() == 2 else mask.unsqueeze(1) if mask.dim() == 3 else mask


def conditioned(generator: StyleGenerator, size: tuple[int, int], batch: int, style: StyleSpec | None = None,
                regions: Sequence[tuple[torch.Tensor, StyleSpec]] = ()) -> tuple[StyleGenerator, torch.Tensor | None]:
    """What to run for a library: ``(generator, maps)`` where ``maps`` (B, K, H, W) are the extra
    input channels of a K-style library (None: a plain single-style generator of the blend).
    A single-style model takes no style choice."""
    if generator.config.style_embedding:
        return _arbitrary(generator, size, batch, style, regions)
    if isinstance(style, StyleFeatures) or any(isinstance(spec, StyleFeatures) for _, spec in regions):
        from .models import default_any_style_model

        raise InputError(f"style features (a painting's style) drive an any-style model; this model's styles are "
                         f"fixed: give a style name, or load the any-style model '{default_any_style_model()}'")
    if not generator.config.num_styles:
        if style is not None or regions:
            raise InputError("this model has one style; styles and masks apply to a style library")
        return generator, None
    if style is None and not regions:
        raise InputError(f"this style library needs a style: one of {generator.style_names}, or a blend "
                         f"such as '{generator.style_names[0]}:0.5, {generator.style_names[-1]}:0.5'")
    if not regions:
        weights = style_weights(generator, style)
        return _cached(generator, ("mix", tuple(weights.tolist())), lambda: generator.mixed(weights)), None
    shares, styles = _region_shares(generator, size, batch, style, regions)
    # the styles a pixel uses: those of the regions that cover any pixel (the rest are never computed)
    present = shares.amax(dim=(0, 2, 3)) > 1e-6                                       # (R,)
    active = [i for i in range(styles.shape[1]) if bool((styles[present, i] > 0).any())]
    if len(active) == 1:
        return conditioned(generator, size, batch, generator.style_names[active[0]])
    maps = torch.einsum("brhw,rs->bshw", shares, styles[:, active])
    return _cached(generator, ("subset", tuple(active)), lambda: generator.subset(active)), maps


def _arbitrary(generator: StyleGenerator, size, batch, style, regions):
    """An arbitrary-style generator with StyleFeatures for the image and/or its regions."""
    from .style_predictor import style_vector

    specs = ([] if style is None else [style]) + [spec for _, spec in regions]
    if not specs:
        raise InputError("an arbitrary-style model needs a style image's features: connect Style Features to GAN "
                         "Stylize's style_features (CLI: --style-image painting.jpg)")
    for spec in specs:
        if not isinstance(spec, StyleFeatures):
            raise InputError(f"an arbitrary-style model takes style features (from a style image), not the style "
                             f"name {spec!r}: connect Style Features (CLI: --style-image)")
        spec.check_read_by(generator.config.style_encoder, "this arbitrary-style model")
    vectors = torch.stack([style_vector(spec) for spec in specs])
    keys = [hashlib.sha1(v.numpy().tobytes()).hexdigest()[:16] for v in vectors]
    if not regions:
        return _cached(generator, ("features", keys[0]), lambda: generator.for_styles(vectors)), None
    names = [f"style {i + 1}" for i in range(len(specs))]
    library = _cached(generator, ("features", *keys), lambda: generator.for_styles(vectors, names))
    first_region = 0 if style is None else 1
    return conditioned(library, size, batch, None if style is None else names[0],
                       [(mask, names[first_region + i]) for i, (mask, _) in enumerate(regions)])


def _cached(generator: StyleGenerator, key, build) -> StyleGenerator:
    """Derived generators are kept (a few) on the library, so repeated calls reuse their device
    copies and CUDA graphs."""
    version = weights_version(generator)
    cache = generator.__dict__.setdefault("_style_choice_cache", {})
    if key not in cache or cache[key][0] != version:   # (re)built when the library's weights changed
        if len(cache) >= 8:
            cache.pop(next(iter(cache)))
        cache[key] = (version, build())
    return cache[key][1]
