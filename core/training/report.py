"""What a run reports about itself: ``run_info.json`` and the facts of its model card."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..config import config_to_dict
from ..data import ImageSet, preview_images
from ..images import image_grid
from ..model_card import TrainingFacts, describe_images
from ..version import __version__
from .styles import parse_style_entry

if TYPE_CHECKING:
    from ..trainer import Trainer


def run_info(trainer: Trainer) -> dict:
    """Resolved facts about a run (device, encoder, data), saved as ``run_info.json``."""
    return {
        "ganstyle_version": __version__, "torch_version": torch.__version__,
        "device": str(trainer.device), "world_size": trainer.world_size,
        "global_batch": trainer.config.batch_size * trainer.world_size,
        "mixed_precision": "bf16" if trainer.amp else "fp32",
        "encoder": {"identity": trainer.encoder.identity, "arch": trainer.encoder.arch,
                    "source": trainer.encoder.source},
        "generator": config_to_dict(trainer.generator.config),
        "discriminator": config_to_dict(trainer.discriminator.config),
        "parameters": {"generator": _count(trainer.generator), "discriminator": _count(trainer.discriminator)},
        "data": {"content": _data_info(trainer.content_images), "style": _data_info(trainer.style_images),
                 "style_target_images": trainer.style_target_count,
                 **({"styles": {s.name: {**_data_info(s.images), "style_target_images": s.target_count}
                                for s in trainer.styles.styles}} if trainer.styles.library else {})},
        "style_layer_weights_effective": {k: trainer.perceptual.layer_weights.get(k, 0.0)
                                          for k in trainer.style_layers},
    }


def training_facts(trainer: Trainer) -> TrainingFacts:
    """What the model card of a run's exported model says about the run."""
    cfg = trainer.config
    content = trainer.content_images
    return TrainingFacts(
        steps=trainer.step, global_batch=cfg.batch_size * trainer.world_size, world_size=trainer.world_size,
        image_size=cfg.image_size, device=str(trainer.device), precision="bf16 autocast" if trainer.amp else "fp32",
        minutes=trainer.elapsed_s / 60, encoder=f"{trainer.encoder.arch} `{trainer.encoder.identity}`",
        data={"content": describe_images(len(content), len(content.skipped), cfg.content),
              "style": _style_data(trainer)},
        final_losses=trainer.last_losses, options=cfg.shareable(local_encoder=trainer.encoder.arch))


@torch.no_grad()
def sample_grid(trainer: Trainer) -> torch.Tensor:
    """(3, H, W) grid: style images on the first row, then content | EMA-stylised pairs."""
    cfg = trainer.config
    count = max(1, cfg.num_previews)
    shown = _shown_styles(trainer)
    if trainer.styles.library:   # one column per style: its first image above its results
        rows = [[trainer.styles.styles[i].images.as_float(0) for i in shown]]
    else:
        style = trainer.style_images
        rows = [[style.as_float(i) for i in range(min(4, len(style)))]]
    rows = [r for r in rows if r]   # a base-generator run has no style images
    if cfg.content_size:    # at the size it is trained for (the photos' cached size)
        previews = [trainer.content_images.as_float(i) for i in range(min(count, len(trainer.content_images)))]
    else:
        previews = preview_images(trainer.content_images, count, cfg.image_size)
    for img in previews:
        img_d = img.to(trainer.device)
        if trainer.styles.library:
            conditions = [trainer.styles.condition(i, 1, trainer.device) for i in shown]
            if trainer.styles.arbitrary:   # the vector at the run's style size
                conditions = [trainer.styles.vectors[i, :1].to(trainer.device) for i in shown]
            rows.append([img] + [trainer.ema_generator(img_d, c).float().cpu() for c in conditions])
        else:
            rows.append([img, trainer.ema_generator(img_d).float().cpu()])
    return image_grid(rows, height=384 if cfg.content_size else 256)


def _shown_styles(trainer: Trainer, most: int = 6) -> list[int]:
    """Indices of the styles a sample grid shows: all of a library's, 6 spread over an arbitrary run's."""
    count = len(trainer.styles)
    if not trainer.styles.arbitrary or count <= most:
        return list(range(count))
    return [round(i * (count - 1) / (most - 1)) for i in range(most)]


def _style_data(trainer: Trainer) -> str:
    cfg = trainer.config
    if not cfg.needs_style:
        return "none (a base generator: no style loss, no discriminator)"
    if not trainer.styles.library:
        style = trainer.style_images
        return describe_images(len(style), len(style.skipped), cfg.style)
    if trainer.styles.arbitrary:
        images = sum(len(s.images) for s in trainer.styles.styles)
        return (f"{len(trainer.styles)} styles ({images} images) from "
                f"{', '.join(parse_style_entry(e)[1].rstrip('/').split('/')[-1] for e in cfg.styles)}")
    return "; ".join(f"{s.name}: {describe_images(len(s.images), len(s.images.skipped), [parse_style_entry(e)[1]])}"
                     for s, e in zip(trainer.styles.styles, cfg.styles))


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _data_info(images: ImageSet) -> dict:
    return {"used": len(images), "skipped": len(images.skipped),
            "skipped_examples": [f"{p}: {why}" for p, why in images.skipped[:5]]}
