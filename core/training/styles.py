"""The styles a run trains: one (a single-style model) or several (a style library).

A single-style run has one :class:`TrainingStyle` (its images may be one painting or a domain
folder) and an unconditioned generator. A library run (``TrainConfig.styles``) has one per entry;
step ``s`` trains style ``s mod S`` (every batch holds one style, so its Gram target and the
discriminator's real crops match), the generator gets that style as one-hot weights and the
discriminator its index (a projection discriminator judges "a real crop of style i").
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import CropSampler, ImageSet, load_image_set
from ..errors import ConfigError
from ..generator import STYLE_INFO_KEYS
from ..losses import PerceptualLoss
from ..vgg import CONTENT_LAYER, STYLE_LAYERS, VGGEncoder
from .config import TrainConfig


def parse_style_entry(entry: str) -> tuple[str, str]:
    """``"NAME=PATH"`` or ``"PATH"`` (named after the file or folder) → (name, path).

    >>> parse_style_entry("storm=art/storm.jpg"), parse_style_entry("art/Silk.png")
    (('storm', 'art/storm.jpg'), ('Silk', 'art/Silk.png'))
    """
    name, sep, path = entry.partition("=")
    if not sep:
        path = entry
        name = Path(entry.rstrip("/\\")).stem
    name, path = name.strip(), path.strip()
    if not name or not path:
        raise ConfigError(f"style entry '{entry}': expected NAME=PATH or PATH")
    return name, path


def library_entries(config: TrainConfig) -> list[dict]:
    """``config.styles`` as the generator's style records: name, source (the path's last part)
    and the licence/author given in ``config.style_info``."""
    entries = []
    for raw in config.styles:
        name, path = parse_style_entry(raw)
        info = {k: str(v) for k, v in config.style_info.get(name, {}).items() if k in STYLE_INFO_KEYS and k != "name"}
        entries.append({"name": name, "source": info.pop("source", Path(path).name), **info})
    names = [e["name"] for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"styles: names {duplicates} appear more than once; name them NAME=PATH")
    unknown = sorted(set(config.style_info) - set(names))
    if unknown:
        raise ConfigError(f"style_info names {unknown}, which are not among the styles {names}")
    return entries


@dataclass
class TrainingStyle:
    """One style of a run: its images, the crops the discriminator sees, its Gram target."""
    name: str
    images: ImageSet
    sampler: CropSampler
    perceptual: PerceptualLoss
    target_count: int


class StyleSet:
    """The run's styles; ``library`` when the generator is conditioned on them."""

    def __init__(self, styles: list[TrainingStyle], library: bool):
        self.styles, self.library = styles, library

    def __len__(self) -> int:
        return len(self.styles)

    def index_for(self, step: int) -> int:
        return step % len(self.styles)

    def condition(self, index: int, batch: int, device: torch.device) -> torch.Tensor | None:
        """The generator's ``style`` argument for a batch of style ``index``: (B, S) one-hot, or
        None for a single-style model."""
        if not self.library:
            return None
        weights = torch.zeros(batch, len(self.styles), device=device)
        weights[:, index] = 1.0
        return weights

    def labels(self, index: int, batch: int, device: torch.device) -> torch.Tensor | None:
        """The discriminator's style labels (B,) for style ``index``, or None (unconditioned)."""
        return torch.full((batch,), index, dtype=torch.long, device=device) if self.library else None

    @property
    def all_images(self) -> list[ImageSet]:
        return [s.images for s in self.styles]


def load_style_sources(config: TrainConfig, *, rank: int, world_size: int,
                       warn: bool) -> list[tuple[str, ImageSet, CropSampler]]:
    """Decode every style's images once and set up its crop sampler: [(name, images, sampler)].
    A base-generator run (no style loss, no discriminator) has none."""
    if not config.needs_style:
        return []
    size = config.image_size
    sources = [parse_style_entry(e) for e in config.styles] if config.styles else [("style", config.style)]
    loaded = []
    for name, path in sources:
        images = load_image_set(path, what=f"style images ({name})" if config.styles else "style images",
                                warn=warn, long_side=config.style_size, min_short_side=size)
        # stream "style" for a single style: the same crops as before libraries existed
        sampler = CropSampler(images, size, config.batch_size, seed=config.seed,
                              stream=f"style:{name}" if config.styles else "style", rank=rank, world_size=world_size)
        loaded.append((name, images, sampler))
    return loaded


def build_style_set(config: TrainConfig, sources: list[tuple[str, ImageSet, CropSampler]], encoder: VGGEncoder,
                    device: torch.device, style_target) -> StyleSet:
    """Each style's Gram target (``style_target``: :func:`~ganstyle.core.training.setup.style_target`)
    and perceptual loss, as the run's :class:`StyleSet`."""
    styles = []
    for name, images, sampler in sources:
        grams, count = style_target(encoder, images, config, device)
        perceptual = PerceptualLoss(grams, dict(zip(STYLE_LAYERS, config.style_layer_weights)) if grams else {},
                                    content_layer=CONTENT_LAYER)
        styles.append(TrainingStyle(name, images, sampler, perceptual, count))
    if not styles:   # a base generator: the content term only
        styles.append(TrainingStyle("none", ImageSet([], [], what="style images"), None,
                                    PerceptualLoss({}, {}, content_layer=CONTENT_LAYER), 0))
    return StyleSet(styles, library=bool(config.styles))
