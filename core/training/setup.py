"""What a run is built from: its data, its style target and the generator it starts from."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data import CropSampler, ImageSet, load_image_set
from ..features import compute_style_features
from ..generator import StyleGenerator
from ..vgg import STYLE_LAYERS, VGGEncoder
from .config import TrainConfig


@dataclass
class TrainingData:
    """Decoded images and their crop samplers. A base-generator run (no style loss and no
    discriminator) has an empty ``style_images`` and no ``style_sampler``."""
    content_images: ImageSet
    content_sampler: CropSampler
    style_images: ImageSet
    style_sampler: CropSampler | None


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
    if not config.needs_style:
        return TrainingData(content, content_sampler, ImageSet([], [], what="style images"), None)
    style = load_image_set(config.style, what="style images", warn=warn, long_side=config.style_size,
                           min_short_side=size)
    style_sampler = CropSampler(style, size, config.batch_size, seed=config.seed, stream="style", rank=rank,
                                world_size=world_size)
    return TrainingData(content, content_sampler, style, style_sampler)


def style_target(encoder: VGGEncoder, style_images: ImageSet, config: TrainConfig,
                 device: torch.device) -> tuple[dict[str, torch.Tensor], int]:
    """The averaged Gram matrices {layer: (C, C) float32} of the style images at ``style_size``
    (all of them, or ``style_target_images`` evenly spaced ones for big domain folders), and how
    many images made them. No style images: ({}, 0)."""
    n = len(style_images)
    if n == 0:
        return {}, 0
    m = min(n, config.style_target_images)
    chosen = [round(i * (n - 1) / (m - 1)) for i in range(m)] if m > 1 else [0]
    target = compute_style_features(encoder, [style_images.as_float(i) for i in chosen], style_size=None,
                                    layers=STYLE_LAYERS)
    return {k: v.to(device, torch.float32) for k, v in target.grams.items()}, len(chosen)


def initial_generator(config: TrainConfig) -> StyleGenerator:
    """A fresh generator of the configured architecture (seeded by the caller), or, with
    ``init_from``, a float32 copy of that model (its own architecture) to fine-tune."""
    if not config.init_from:
        return StyleGenerator(config.generator_config())
    from ..models import load_style_model
    base = load_style_model(config.init_from, use_cache=False).generator
    generator = StyleGenerator(base.config)
    generator.load_state_dict({k: v.float() for k, v in base.state_dict().items()})
    return generator
