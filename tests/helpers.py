"""Shared test helpers: the tiny generator config, tiny synthetic VGG weights in the real
torchvision key layout, a pre-filled Hugging Face Hub cache, and small deterministic test images."""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import torch
from safetensors.torch import save_file

from ganstyle.core.generator import GeneratorConfig, StyleGenerator
from ganstyle.core.vgg import vgg_layers

torch.set_num_threads(min(2, os.cpu_count() or 1))

# The tests' generator: 4 → 8 channels, two halvings (the first a pixel-unshuffle, as in the shipped
# 'fast' preset), one residual block, 3x3 kernels; a few thousand weights. GeneratorConfig fields,
# so also a TrainConfig.generator.
TINY_GENERATOR = dict(base_channels=4, max_channels=8, num_downsamples=2, num_residual_blocks=1, first_kernel=3,
                      last_kernel=3, pixel_shuffle=True, preset="tiny")


def tiny_config(**changes) -> GeneratorConfig:
    """The tiny :class:`GeneratorConfig`, with ``changes`` to its fields."""
    return GeneratorConfig(**{**TINY_GENERATOR, **changes})


def tiny_generator(seed: int = 0, **changes) -> StyleGenerator:
    """A tiny generator with random weights drawn after ``torch.manual_seed(seed)``, in eval mode."""
    torch.manual_seed(seed)
    return StyleGenerator(tiny_config(**changes)).eval()


LIBRARY_STYLES = ({"name": "ink", "licence": "CC0"}, {"name": "oil", "author": "someone"}, {"name": "chalk"})


def tiny_library(seed: int = 0) -> StyleGenerator:
    """A 3-style tiny library (:data:`LIBRARY_STYLES`) whose styles really differ (random scales and shifts)."""
    library = tiny_generator(seed, styles=LIBRARY_STYLES)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for norm in library.style_norms().values():
            norm.weight.copy_(1 + 1.0 * torch.randn(norm.weight.shape, generator=g))
            norm.bias.copy_(2.0 * torch.randn(norm.bias.shape, generator=g))
    return library


def tiny_arbitrary(seed: int = 0, embedding: int = 4, encoder: str = "") -> StyleGenerator:
    """A tiny arbitrary-style generator (style embedding ``embedding``) whose predictor and norm
    tables are random, so different style vectors give really different results."""
    torch.manual_seed(seed)
    model = StyleGenerator.arbitrary_from(tiny_generator(seed), embedding, hidden=8, encoder=encoder)
    with torch.no_grad():
        for norm in model.style_norms().values():
            norm.weight.add_(0.5 * torch.randn(norm.weight.shape))
            norm.bias.add_(1.0 * torch.randn(norm.bias.shape))
        torch.nn.init.normal_(model.predictor.net[2].weight, std=1.0)
    return model.eval()


def tiny_generator_flags() -> list[str]:
    """``ganstyle train`` flags that train the tiny generator."""
    return ["--generator", *(f"{k}={json.dumps(v)}" for k, v in TINY_GENERATOR.items())]


def comfy_call(node_cls, **inputs):
    """Run a node the way ComfyUI does, inside inference mode: its ``execute`` (a V3 node, on
    ComfyUI's schema or the pack's V1 stand-in, ganstyle.nodes.v1_schema); the output values as a tuple."""
    with torch.inference_mode():
        return tuple(node_cls.execute(**inputs).args)


def make_vgg_state(arch: str, seed: int = 0, with_classifier: bool = True) -> dict[str, torch.Tensor]:
    """Random (He-initialised, seeded) VGG ``features.N`` weights with the real shapes, plus a small
    fake classifier tensor that loaders must never read."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for layer in vgg_layers(arch):
        if layer.kind == "conv":
            fan_in = layer.in_channels * 9
            state[f"features.{layer.index}.weight"] = torch.randn(
                layer.out_channels, layer.in_channels, 3, 3, generator=g) * math.sqrt(2.0 / fan_in)
            state[f"features.{layer.index}.bias"] = torch.randn(layer.out_channels, generator=g) * 0.01
    if with_classifier:
        state["classifier.0.weight"] = torch.zeros(4, 4)
    return state


def write_vgg(path: Path, arch: str, seed: int = 0, **kw) -> Path:
    save_file(make_vgg_state(arch, seed, **kw), str(path))
    return path


def fill_hub_cache(cache_dir: Path, repo_id: str, files: dict[str, bytes | Path],
                   revision: str = "main", commit: str = "0123456789abcdef0123456789abcdef01234567",
                   blobs: bool = False) -> Path:
    """Lay files out exactly as huggingface_hub's cache does (refs/<rev> → snapshots/<commit>/…),
    so the real ``hf_hub_download`` finds them with ``HF_HUB_OFFLINE=1``. ``blobs=True``: as on
    Linux, each snapshot entry is a relative symlink to ``blobs/<sha256>``."""
    repo_dir = cache_dir / f"models--{repo_id.replace('/', '--')}"
    snap = repo_dir / "snapshots" / commit
    for name, data in files.items():
        target = snap / name
        target.parent.mkdir(parents=True, exist_ok=True)
        content = data.read_bytes() if isinstance(data, Path) else data
        if blobs:
            blob = repo_dir / "blobs" / hashlib.sha256(content).hexdigest()
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(content)
            target.symlink_to(os.path.relpath(blob, target.parent))
        else:
            target.write_bytes(content)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / revision).write_text(commit)
    return snap


def synthetic_photo(h: int = 48, w: int = 64, seed: int = 0) -> torch.Tensor:
    """A smooth 'photo': gradients and a disc. (1, 3, H, W) in [0, 1]."""
    y = torch.linspace(0, 1, h).view(h, 1).expand(h, w)
    x = torch.linspace(0, 1, w).view(1, w).expand(h, w)
    disc = (((x - 0.6) ** 2 + (y - 0.4) ** 2) < 0.05).float()
    img = torch.stack([0.2 + 0.6 * x, 0.3 + 0.5 * y, 0.5 + 0.4 * disc - 0.2 * x])
    return img.clamp(0, 1).unsqueeze(0)


def synthetic_painting(h: int = 48, w: int = 48, seed: int = 1) -> torch.Tensor:
    """A high-frequency 'painting': coloured stripes and blobs. (1, 3, H, W) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(h).view(h, 1).float()
    x = torch.arange(w).view(1, w).float()
    stripes = 0.5 + 0.5 * torch.sin((x + y) * 0.9)
    noise = torch.rand(3, h, w, generator=g)
    img = torch.stack([stripes, 1 - stripes, 0.5 * stripes]) * 0.7 + 0.3 * noise
    return img.clamp(0, 1).unsqueeze(0)


# The trainer tests' generator: one halving, tiny channels (TrainConfig's preset fills in the rest).
TINY_TRAIN_GENERATOR = dict(base_channels=4, max_channels=8, num_downsamples=1, num_residual_blocks=1,
                            first_kernel=3, last_kernel=3)


def training_data(root: Path, photos: int = 4) -> dict:
    """A content folder of ``photos`` synthetic 40×52 photos (shifted, every other one flipped) and
    one 48×48 synthetic painting: ``{"content": folder, "style": file}``."""
    from ganstyle.core.images import save_image
    (root / "content").mkdir(parents=True, exist_ok=True)
    for i in range(photos):
        photo = synthetic_photo(40, 52).roll(7 * i, dims=-1)
        save_image(photo if i % 2 else photo.flip(-2), root / "content" / f"photo{i}.png")
    save_image(synthetic_painting(48, 48), root / "style.png")
    return {"content": str(root / "content"), "style": str(root / "style.png")}


def tiny_train_config(data: dict, out, **changes):
    """A :class:`TrainConfig` for a few 32 px steps of the tiny generator on ``training_data``."""
    from ganstyle.core.trainer import TrainConfig
    options = dict(content=data["content"], style=data["style"], out=str(out), generator=TINY_TRAIN_GENERATOR,
                   steps=4, image_size=32, batch_size=2, warmup_steps=1, d_channels=4, d_layers=2, style_size=48,
                   log_every=1, sample_every=0, checkpoint_every=0, num_previews=2, progress=False)
    options.update(changes)
    return TrainConfig(**options)


def cut_network(monkeypatch):
    """Online mode, with the Hub endpoint on a closed loopback port: every connection is refused."""
    import huggingface_hub.constants as c
    endpoint = "http://127.0.0.1:9"
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False, raising=False)
    monkeypatch.setattr(c, "ENDPOINT", endpoint)
    monkeypatch.setattr(c, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    return endpoint


def panning_clip(frames: int, h: int, w: int, *, shift: int = 2, noise: float = 0.04, seed: int = 1) -> list:
    """A synthetic photo panning right by ``shift`` px per frame, with fresh sensor noise in every
    frame: a clip whose exact motion is known. Frames (1, 3, h, w) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    base = synthetic_photo(h, w)
    return [(base.roll(shift * t, -1) + noise * torch.randn(base.shape, generator=g)).clamp(0, 1)
            for t in range(frames)]


def panning_warp_error(results: list, shift: int = 2, border: int = 8) -> float:
    """E_warp of the results of :func:`panning_clip`: the mean squared difference between each
    result and the previous one moved by the known ``shift``, away from the ``border``."""
    import numpy as np

    from ganstyle.core.flow import warp_by_flow
    flow = np.zeros((*results[0].shape[-2:], 2), np.float32)
    flow[..., 0] = -shift
    inner = (..., slice(border, -border), slice(border, -border))
    return sum(float((r - warp_by_flow(p, flow))[inner].pow(2).mean())
               for p, r in zip(results, results[1:])) / (len(results) - 1)


def workflow_world(root: Path) -> dict:
    """What the example workflows (example_workflows/api) need, tiny: a VGG19 in the Hub cache
    (where 'vgg19' resolves offline; the cache is per-test, tests/conftest.py), and in
    ``root/models`` (point ``GANSTYLE_MODELS_DIR`` there) a tiny style library under the shipped
    library's name, the vgg16-hed encoder arbitrary-fast reads style features with and a tiny
    arbitrary-style model (``tiny-arbitrary``) reading that encoder's features. Returns the small
    inputs of the stand-in ComfyUI load nodes (``workflow_runner.use_inputs``' arguments):
    ``{"images": ..., "masks": ..., "clips": ...}`` by the file names the workflows load."""
    import huggingface_hub.constants as c

    from ganstyle.core.vgg import load_vgg_encoder_file
    vgg = write_vgg(root / "vgg19.safetensors", "vgg19", seed=3)
    fill_hub_cache(Path(c.HF_HUB_CACHE), "timm/vgg19.tv_in1k", {"model.safetensors": vgg})
    models = root / "models"
    # a tiny style library under the shipped library's name (used where the registry lacks it)
    library = tiny_generator(styles=tuple({"name": n} for n in
                                          ("ice_palace", "fire_temple", "the_fall", "altar", "coast", "sketches")))
    library.save_pretrained(models / "style_transfer" / "library-fast")
    (models / "vgg").mkdir(parents=True)
    hed = write_vgg(models / "vgg" / "vgg16-hed.safetensors", "vgg16", seed=5)
    tiny_arbitrary(encoder=load_vgg_encoder_file(hed).identity).save_pretrained(
        models / "style_transfer" / "tiny-arbitrary")
    # the sample images the pack copies into ComfyUI's input folder (comfy_env.SAMPLE_IMAGES), small
    mask = torch.zeros(1, 20, 28)
    mask[..., 10:] = 1.0
    return {"images": {"ganstyle_photo.jpg": synthetic_photo(40, 56),
                       "ganstyle_painting.jpg": synthetic_painting(48, 48),
                       "ganstyle_painting2.jpg": synthetic_painting(32, 40, seed=7)},
            "masks": {"ganstyle_mask.png": mask},
            # a 6-frame clip: the photo moving right by 2 px per frame (ComfyUI IMAGE batch, B H W C)
            "clips": {"ganstyle_clip.mp4": torch.cat([synthetic_photo(40, 56).roll(2 * i, -1) for i in range(6)])
                      .permute(0, 2, 3, 1)}}


def tiny_encoder_decoder(encoder, levels=("relu2_1", "relu1_1"), seed: int = 0, **settings):
    """An encoder–decoder over ``encoder`` (reads its Style Features) whose random decoders give
    mid-grey-centred pictures, not saturated ones (so results compare meaningfully)."""
    from ganstyle.core.decoder import new_encoder_decoder

    torch.manual_seed(seed)
    model = new_encoder_decoder(encoder, levels, **{"full_channels": 8, **settings})
    with torch.no_grad():
        for decoder in model.decoders.values():
            for p in decoder.parameters():
                p.mul_(0.5)
            decoder[-1].bias.fill_(0.5)
    return model.eval()
