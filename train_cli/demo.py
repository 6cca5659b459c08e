"""``ganstyle demo``: stylise the shipped sample photo, offline, and write a side-by-side PNG
(photo | painting | result).

By default it runs the shipped style model (the registry's default, trained by us on the sample
painting) with :func:`ganstyle.core.stylize.stylize`: one forward pass, a second or two on a CPU.

``--optimize`` runs the optimisation engine (core.optimize) instead. No VGG weights can be
downloaded on a fresh machine, so that mode uses a VGG16 with *random* (seeded) weights: the
engine is real, but the result only shows the painting's colours and fine texture, not the
quality of ImageNet VGG features.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

SAMPLES = Path(__file__).resolve().parents[1] / "weights" / "samples"


def add_parser(subparsers) -> None:
    from ..core.optimize import OptimizeOptions
    from .options import field_doc

    p = subparsers.add_parser("demo", help="stylise the sample photo with the shipped style model (offline)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="ganstyle_demo.png",
                   help="PNG to write (photo | painting | result); default ./ganstyle_demo.png")
    p.add_argument("--size", type=int, default=None,
                   help="long side of the result in pixels (default: 512 with the shipped model, 256 with --optimize)")
    p.add_argument("--model", default=None,
                   help="style model reference (default: the registry's default style, shipped in weights/)")
    p.add_argument("--optimize", action="store_true",
                   help="run the optimisation engine with a random-weight VGG16 instead of the shipped model")
    p.add_argument("--steps", type=int, default=OptimizeOptions.steps,
                   help=f"with --optimize: {field_doc(OptimizeOptions, 'steps')} (default {OptimizeOptions.steps})")
    p.add_argument("--device", default="auto",
                   help="torch device: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, ...")
    p.set_defaults(func=main)


def random_vgg16(seed: int = 0, device: torch.device | str = "cpu"):
    """A VGG16 encoder with seeded He-initialised random weights (stands in for ImageNet weights)."""
    from ..core.vgg import VGGEncoder

    encoder = VGGEncoder("vgg16", "relu5_1", identity=f"vgg16:random-seed{seed}", source="random (demo)")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for conv in encoder.features:
            if isinstance(conv, torch.nn.Conv2d):
                fan_in = conv.in_channels * 9
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
                conv.bias.zero_()
    return encoder.to(device).eval()


def main(args) -> int:
    if args.optimize:
        return optimize_demo(args)
    from ..core.device import resolve_device
    from ..core.errors import InputError
    from ..core.features import resize_long_side
    from ..core.images import image_grid, load_image, save_image
    from ..core.models import default_style_model, load_style_model
    from ..core.stylize import stylize

    size = args.size or 512
    if size < 64:
        raise InputError(f"--size must be at least 64 pixels, got {size}")
    device = resolve_device(args.device)
    ref = args.model or default_style_model()
    if ref is None:
        raise InputError("no style model in weights/registry.json; pass --model or use --optimize")
    model = load_style_model(ref, device=device)
    print(f"ganstyle demo: style model '{model.name}' ({model.source}) on {device}, {size} px")
    photo = resize_long_side(load_image(SAMPLES / "photo.jpg"), size)
    painting = load_image(SAMPLES / "painting.jpg")
    start = time.perf_counter()
    result = stylize(model, photo.to(device), device=device).cpu()
    seconds = time.perf_counter() - start
    out = save_image(image_grid([[photo, painting, result]], height=min(size, 512)), args.out)
    print(f"wrote {out.resolve()} (photo | painting | result); stylised in {seconds:.2f} s")
    return 0


def optimize_demo(args) -> int:
    from ..core.device import resolve_device
    from ..core.errors import InputError
    from ..core.features import compute_style_features
    from ..core.images import image_grid, load_image, save_image
    from ..core.optimize import OptimizeOptions, optimize_stylize

    args.size = args.size or 256
    if args.size < 64:
        raise InputError(f"--size must be at least 64 pixels, got {args.size}")
    options = OptimizeOptions(long_side=args.size, start_side=max(64, args.size // 2), steps=args.steps).checked()
    device = resolve_device(args.device)
    print("ganstyle demo: VGG16 with random weights (no weights are downloaded in the demo), "
          f"optimisation-based style transfer at {args.size} px on {device}")
    encoder = random_vgg16(0, device)
    photo = load_image(SAMPLES / "photo.jpg")
    painting = load_image(SAMPLES / "painting.jpg")
    style = compute_style_features(encoder, painting, style_size=args.size)
    start = time.perf_counter()

    def progress(step, total, losses, preview):
        if step % 25 == 0 or step == total:
            print(f"  step {step:4d}/{total}  loss {losses['total']:.4f}", flush=True)

    result = optimize_stylize(encoder, photo.to(device), style, options, progress=progress)
    out = save_image(image_grid([[photo, painting, result.cpu()]], height=args.size), args.out)
    print(f"wrote {out.resolve()} (photo | painting | result) in {time.perf_counter() - start:.0f} s")
    return 0
