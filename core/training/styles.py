"""The styles a run trains: one (a single-style model) or several (a style library).

A single-style run has one :class:`TrainingStyle` (its images may be one painting or a domain
folder) and an unconditioned generator. A library run (``TrainConfig.styles``) has one per entry;
step ``s`` trains style ``s mod S`` (every batch holds one style, so its Gram target and the
discriminator's real crops match), the generator gets that style as one-hot weights and the
discriminator its index (a projection discriminator judges "a real crop of style i").

An arbitrary-style run (``TrainConfig.arbitrary``) has one per subfolder (or image) of its
``styles`` folders, visited in a seeded random order; the generator gets the style's *vector*
(its VGG statistics, :func:`~ganstyle.core.style_predictor.style_vector`, measured at a few
style sizes, one picked per step) instead of a one-hot choice, so it learns to read any style.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import CropSampler, ImageSet, load_image_set
from ..errors import ConfigError
from ..features import compute_style_features
from ..generator import STYLE_INFO_KEYS
from ..images import IMAGE_SUFFIXES
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


def styles_in_folder(folder: Path) -> list[tuple[str, Path]]:
    """A folder of styles → [(name, path)], in name order: each subfolder one style (a domain of its
    images), each image directly in it one more (named after the file)."""
    return [(child.name if child.is_dir() else child.stem, child) for child in sorted(Path(folder).iterdir())
            if child.is_dir() or child.suffix.lower() in IMAGE_SUFFIXES]


def arbitrary_style_entries(config: TrainConfig) -> list[tuple[str, str]]:
    """The training styles of an arbitrary-style run, [(name, path)]: each subfolder of a
    ``styles`` folder is one style (a domain of its images), each image directly in it one more;
    a ``styles`` entry that is an image file is one style."""
    entries = []
    for raw in config.styles:
        _, path = parse_style_entry(raw)
        folder = Path(path)
        if folder.is_file():
            entries.append((folder.stem, str(folder)))
            continue
        if not folder.is_dir():
            raise ConfigError(f"styles: {path} is neither a folder of styles nor an image file")
        entries.extend((name, str(child)) for name, child in styles_in_folder(folder))
    names = [n for n, _ in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"styles: {len(duplicates)} training styles share names across folders, e.g. "
                          f"{duplicates[:5]}; give every style folder/image a unique name")
    if len(entries) < 2:
        raise ConfigError(f"an arbitrary-style run needs at least 2 training styles in {list(config.styles)}, "
                          f"found {len(entries)}")
    return entries


# Style sizes (long side, px) at which each training style's vector is measured besides the run's
# style_size (its Gram target's pass gives that one): users compute Style Features at different
# sizes, so the predictor sees the statistics of each.
VECTOR_STYLE_SIZES = (384,)


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

    def __init__(self, styles: list[TrainingStyle], library: bool, vectors: torch.Tensor | None = None,
                 seed: int = 0):
        self.styles, self.library = styles, library
        # arbitrary-style runs: (S, len(VECTOR_STYLE_SIZES), STYLE_VECTOR_SIZE) style vectors
        self.vectors, self.seed = vectors, seed

    def __len__(self) -> int:
        return len(self.styles)

    @property
    def arbitrary(self) -> bool:
        return self.vectors is not None

    def index_for(self, step: int) -> int:
        if not self.arbitrary:
            return step % len(self.styles)
        # every style once per cycle of S steps, in a fresh random order each cycle (a pure function
        # of the seed and the step, so resuming stays exact)
        count = len(self.styles)
        cycle, position = divmod(step, count)
        order = torch.randperm(count, generator=torch.Generator().manual_seed(self.seed * 7919 + cycle))
        return int(order[position])

    def condition(self, index: int, batch: int, device: torch.device, step: int = 0) -> torch.Tensor | None:
        """The generator's ``style`` argument for a batch of style ``index`` at ``step``: (B, S)
        one-hot, an arbitrary-style run's (B, STYLE_VECTOR_SIZE) vectors, or None for a single-style model."""
        if not self.library:
            return None
        if self.arbitrary:
            return self.vectors[index].to(device)[self.vector_choice(step, batch)]
        weights = torch.zeros(batch, len(self.styles), device=device)
        weights[:, index] = 1.0
        return weights

    def vector_choice(self, step: int, batch: int) -> torch.Tensor:
        """Which style size's vector each image of the batch of ``step`` gets (B,): a pure function
        of the seed and the step (resuming stays exact)."""
        rng = torch.Generator().manual_seed(self.seed * 104729 + step)
        return torch.randint(self.vectors.shape[1], (batch,), generator=rng)

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
    if config.arbitrary:
        sources = arbitrary_style_entries(config)
    elif config.styles:
        sources = [parse_style_entry(e) for e in config.styles]
    else:
        sources = [("style", config.style)]
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
                    device: torch.device, style_target, cache: Path | None = None) -> StyleSet:
    """Each style's Gram target (``style_target``: :func:`~ganstyle.core.training.setup.style_target`)
    and perceptual loss, as the run's :class:`StyleSet`. An arbitrary-style run also measures each
    style's vectors, and keeps targets and vectors in ``cache`` (a safetensors file, reused when
    the styles, sizes and encoder are the same: a resumed run of many styles starts at once)."""
    if config.arbitrary:
        return _arbitrary_style_set(config, sources, encoder, device, style_target, cache)
    styles = []
    for name, images, sampler in sources:
        grams, count, _ = style_target(encoder, images, config, device)
        perceptual = PerceptualLoss(grams, dict(zip(STYLE_LAYERS, config.style_layer_weights)) if grams else {},
                                    content_layer=CONTENT_LAYER)
        styles.append(TrainingStyle(name, images, sampler, perceptual, count))
    if not styles:   # a base generator: the content term only
        styles.append(TrainingStyle("none", ImageSet([], [], what="style images"), None,
                                    PerceptualLoss({}, {}, content_layer=CONTENT_LAYER), 0))
    return StyleSet(styles, library=bool(config.styles))


def _arbitrary_style_set(config: TrainConfig, sources, encoder: VGGEncoder, device: torch.device, style_target,
                        cache: Path | None) -> StyleSet:
    from tqdm.auto import tqdm

    from ..io import load_safetensors_checked, save_safetensors_atomic
    from ..style_predictor import style_vector

    key = _statistics_key(config, sources, encoder)
    cached = {}
    if cache is not None and cache.is_file():
        from safetensors import safe_open
        with safe_open(str(cache), "pt") as f:
            if (f.metadata() or {}).get("key") == key:
                cached = load_safetensors_checked(cache)
    styles, vectors, fresh = [], [], {}
    for name, images, sampler in tqdm(sources, desc="style statistics", unit="style", disable=not config.progress):
        if f"{name}/vectors" in cached:
            grams = {layer: cached[f"{name}/gram/{layer}"].to(device) for layer in STYLE_LAYERS}
            count, vector = len(images), cached[f"{name}/vectors"]
        else:
            grams, count, target = style_target(encoder, images, config, device)
            chosen = [images.as_float(i) for i in range(min(len(images), 8))]
            vector = torch.stack([style_vector(target)] + [style_vector(compute_style_features(encoder, chosen,
                                                                                                style_size=size))
                                                           for size in VECTOR_STYLE_SIZES])
            fresh.update({f"{name}/gram/{layer}": g.cpu() for layer, g in grams.items()})
            fresh[f"{name}/vectors"] = vector
        perceptual = PerceptualLoss(grams, dict(zip(STYLE_LAYERS, config.style_layer_weights)),
                                    content_layer=CONTENT_LAYER)
        styles.append(TrainingStyle(name, images, sampler, perceptual, count))
        vectors.append(vector)
    if cache is not None and fresh:
        cache.parent.mkdir(parents=True, exist_ok=True)
        save_safetensors_atomic({**cached, **fresh}, cache, metadata={"key": key})
    return StyleSet(styles, library=True, vectors=torch.stack(vectors), seed=config.seed)


def _statistics_key(config: TrainConfig, sources, encoder: VGGEncoder) -> str:
    """What the cached style statistics depend on: the style files (names, sizes, times), the
    sizes they are measured at and the encoder."""
    import hashlib

    parts = [encoder.identity, str(config.style_size), str(config.image_size), str(VECTOR_STYLE_SIZES)]
    for name, images, _ in sources:
        for path in images.files:
            stat = Path(path).stat()
            parts.append(f"{name}|{path}|{stat.st_size}|{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
