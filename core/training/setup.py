"""What a run is built from: its data, its style target and the generator it starts from."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..data import CropSampler, ImageSet, load_image_set
from ..errors import ConfigError
from ..features import StyleFeatures, compute_style_features
from ..generator import StyleGenerator
from ..vgg import STYLE_LAYERS, VGGEncoder
from .config import TrainConfig
from .styles import library_entries, load_style_sources


@dataclass
class TrainingData:
    """Decoded content images and their crop sampler, and each style's (name, images, sampler):
    one for a single-style run, one per entry of ``TrainConfig.styles`` for a library, none for a
    base-generator run (no style loss and no discriminator)."""
    content_images: ImageSet
    content_sampler: CropSampler
    styles: list[tuple[str, ImageSet, CropSampler]]


def load_training_data(config: TrainConfig, *, rank: int, world_size: int, warn: bool) -> TrainingData:
    """Decode content and style images once (fails here, before any model is built, if a source
    is unusable) and set up the per-step crop samplers."""
    size = config.image_size
    if config.content_size:     # the scale the user stylises at; crops then take random scales
        content = load_image_set(config.content, what="content images", warn=warn,
                                 long_side=config.content_size, min_short_side=size, enlarge=False)
    else:
        content = load_image_set(config.content, what="content images", warn=warn,
                                 short_side=round(config.content_scale * size))
    content_sampler = CropSampler(content, size, config.batch_size, seed=config.seed, stream="content", rank=rank,
                                  world_size=world_size, scale_min=config.crop_scale_min, jitter=config.color_jitter)
    return TrainingData(content, content_sampler,
                        load_style_sources(config, rank=rank, world_size=world_size, warn=warn))


def style_target(encoder: VGGEncoder, style_images: ImageSet, config: TrainConfig,
                 device: torch.device) -> tuple[dict[str, torch.Tensor], int, StyleFeatures | None]:
    """The averaged Gram matrices {layer: (C, C) float32} of the style images at ``style_size``
    (all of them, or ``style_target_images`` evenly spaced ones for big domain folders), how
    many images made them, and their whole :class:`StyleFeatures`. No style images: ({}, 0, None)."""
    n = len(style_images)
    if n == 0:
        return {}, 0, None
    m = min(n, config.style_target_images)
    chosen = [round(i * (n - 1) / (m - 1)) for i in range(m)] if m > 1 else [0]
    target = compute_style_features(encoder, [style_images.as_float(i) for i in chosen], style_size=None,
                                    layers=STYLE_LAYERS)
    return {k: v.to(device, torch.float32) for k, v in target.grams.items()}, len(chosen), target


def initial_generator(config: TrainConfig) -> StyleGenerator:
    """A fresh generator of the configured architecture (seeded by the caller), or, with
    ``init_from``, a float32 copy of that model (its own architecture) to fine-tune. A library run
    (``config.styles``) gets a library: from a single-style ``init_from`` every style starts at
    its norm parameters; a library ``init_from`` must hold the same styles."""
    if config.arbitrary:
        return arbitrary_generator(config)
    entries = library_entries(config) if config.styles and not config.arbitrary else []
    if config.base:   # a new style for a library: start from the mix of its styles
        from ..models import load_style_model
        library = load_style_model(config.base, use_cache=False).generator
        if not library.config.num_styles:
            raise ConfigError(f"--base {config.base} is a single-style model; --base takes a style library")
        start = library.mixed(torch.full((library.config.num_styles,), 1.0 / library.config.num_styles))
        return start.float().requires_grad_(True)
    if not config.init_from:
        generator_config = config.generator_config()
        if entries:
            generator_config = dataclasses.replace(generator_config, styles=tuple(entries))
        return StyleGenerator(generator_config)
    from ..models import load_style_model
    base = load_style_model(config.init_from, use_cache=False).generator
    if entries and not base.config.num_styles:
        return StyleGenerator.library_from(base, entries)
    if entries and base.style_names != [e["name"] for e in entries]:
        raise ConfigError(f"--init-from {config.init_from} is a library of {base.style_names}; a library run "
                          f"fine-tuning it must train the same styles in the same order, not "
                          f"{[e['name'] for e in entries]}")
    if not entries and base.config.num_styles:
        raise ConfigError(f"--init-from {config.init_from} is a style library; train a library (--styles) or add "
                          f"a style to it (--base), or start a single-style model from a single-style one")
    config_ = dataclasses.replace(base.config, styles=tuple(entries)) if entries else base.config
    generator = StyleGenerator(config_)
    generator.load_state_dict({k: v.float() for k, v in base.state_dict().items()})
    return generator


def arbitrary_generator(config: TrainConfig) -> StyleGenerator:
    """The start of an arbitrary-style run: fresh, or with ``init_from``'s convolutions (a style
    library's styles become the first directions of the embedding, its mean style the start)."""
    if not config.init_from:
        generator_config = dataclasses.replace(config.generator_config(), style_embedding=config.style_embedding)
        return StyleGenerator(generator_config)
    from ..models import load_style_model
    base = load_style_model(config.init_from, use_cache=False).generator
    if base.config.style_embedding:     # fine-tuning an arbitrary-style model
        if base.config.style_embedding != config.style_embedding:
            raise ConfigError(f"--init-from {config.init_from} has a style embedding of {base.config.style_embedding}, "
                              f"not --style-embedding {config.style_embedding}")
        generator = StyleGenerator(base.config)
        generator.load_state_dict({k: v.float() for k, v in base.state_dict().items()})
        return generator
    hidden = config.generator.get("predictor_hidden", 256)
    return StyleGenerator.arbitrary_from(base.float(), config.style_embedding, hidden)
