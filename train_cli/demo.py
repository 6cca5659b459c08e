"""``ganstyle demo``: stylise the shipped sample photo, offline, and write a side-by-side PNG
(photo | painting | result; the painting is the model's style.jpg when its folder has one).

By default it runs the shipped style model (the registry's default) with
:func:`ganstyle.core.stylize.stylize`: one forward pass, a second or two on a CPU.

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

# `ganstyle demo --help` (plain text: argparse shows it as written)
DESCRIPTION = """\
Stylise the sample photo that ships with ganstyle, offline, and write a side-by-side
PNG: photo | painting | result.

By default it runs the shipped style model (the registry's default): one forward pass,
a second or two on a CPU. The painting shown is the model's own style image when its
folder ships one (style.jpg), else the sample painting.

--optimize runs the optimisation engine instead. The demo downloads nothing, so that
mode uses a VGG16 with random (seeded) weights: the engine is real, but the result only
shows the painting's colours and fine texture, not what ImageNet VGG features give. It
prints an estimate of its duration first, then the loss per scale (coarse to fine; the
loss of a finer scale starts higher because it is measured on more pixels).

An existing output file is not replaced unless --overwrite is given."""


def add_parser(subparsers) -> None:
    from ..core.optimize import OptimizeOptions
    from .options import field_doc

    p = subparsers.add_parser("demo", help="stylise the sample photo with the shipped style model (offline)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="ganstyle_demo.png",
                   help="image to write (photo | painting | result): PNG, or JPEG/WebP by the suffix; "
                        "default ./ganstyle_demo.png")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the output file if it exists (default: stop before overwriting it)")
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


def check_output(args) -> None:
    """Refuse to replace an existing output, as ``ganstyle stylize`` does, unless --overwrite."""
    from ..core.errors import InputError

    out = Path(args.out).expanduser()
    if out.exists() and not args.overwrite:
        raise InputError(f"{out} already exists; pass --overwrite to replace it, or choose another --out")


def main(args) -> int:
    check_output(args)
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
    # the model's own style reference when its folder ships one (style.jpg), else the sample painting
    shipped_style = Path(model.weights_path).parent / "style.jpg"
    painting = load_image(shipped_style if shipped_style.is_file() else SAMPLES / "painting.jpg")
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
    from ..core.optimize import OptimizeOptions, optimize_stylize, plan_scales

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
    plan = plan_scales(photo.shape[-2], photo.shape[-1], options)
    sides = ", ".join(f"{max(s.height, s.width)} px" for s in plan)
    print(f"  {len(plan)} scale{'s' if len(plan) > 1 else ''} ({sides}), {sum(s.steps for s in plan)} loss "
          f"evaluations; estimated "
          f"{_format_seconds(estimate_seconds(encoder, plan, device))}", flush=True)
    start = time.perf_counter()
    result = optimize_stylize(encoder, photo.to(device), style, options, progress=ScaleProgress(plan))
    out = save_image(image_grid([[photo, painting, result.cpu()]], height=args.size), args.out)
    print(f"wrote {out.resolve()} (photo | painting | result) in {time.perf_counter() - start:.0f} s")
    return 0


def estimate_seconds(encoder, plan, device) -> float:
    """Rough duration of an optimisation: one timed loss evaluation (VGG forward + backward) at the
    coarsest scale, scaled by each scale's pixels and evaluations."""
    first = plan[0]
    x = torch.rand(1, 3, first.height, first.width, device=device, requires_grad=True)
    seconds = float("inf")
    for _ in range(2):  # the first pass also pays for one-time set-up
        start = time.perf_counter()
        sum(f.square().mean() for f in encoder(x).values()).backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = min(seconds, time.perf_counter() - start)
    area = first.height * first.width
    return seconds * sum(s.steps * s.height * s.width / area for s in plan)


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class ScaleProgress:
    """Prints the loss per scale: ``scale 2/3 (256 px): step 10/50  loss 1.23 (-40% in this scale)``.
    A finer scale's loss is measured on more pixels and starts higher: shown per scale, that jump
    reads as a new stage, not as the optimisation getting worse."""

    def __init__(self, plan, every: int = 25):
        self.plan, self.every = plan, every
        self.ends = [sum(s.steps for s in plan[:k + 1]) for k in range(len(plan))]
        self.scale = -1
        self.first_loss = 0.0

    def __call__(self, step, total, losses, preview):
        k = next((i for i, end in enumerate(self.ends) if step <= end), len(self.plan) - 1)
        loss = losses["total"]
        if k != self.scale:
            self.scale, self.first_loss = k, loss
        begin = self.ends[k - 1] if k else 0
        in_scale, steps = step - begin, self.plan[k].steps
        if in_scale == 1 or in_scale % self.every == 0 or step == self.ends[k]:
            change = ""
            if in_scale > 1 and self.first_loss > 0:
                change = f" ({(loss / self.first_loss - 1) * 100:+.0f}% in this scale)"
            side = max(self.plan[k].height, self.plan[k].width)
            print(f"  scale {k + 1}/{len(self.plan)} ({side} px): step {in_scale:3d}/{steps}  "
                  f"loss {loss:.4f}{change}", flush=True)
