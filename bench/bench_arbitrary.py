"""Speed of an arbitrary-style model (any painting in one pass) against a single-style fast model.

    python bench/bench_arbitrary.py --model arbitrary-fast --style painting.jpg --encoder vgg16-hed
    python bench/bench_arbitrary.py --device cuda --size 1024

Prints, for one --size² image (best of --repeats):

- ``single``: :func:`ganstyle.core.stylize.stylize` with --single (a trained single-style model);
- ``arbitrary``: the same with the arbitrary model and the painting's StyleFeatures, the painting
  already seen (its folded generator is cached, as when a batch or a video runs): the goal is at
  most 2x ``single``;
- ``arbitrary-first``: the first picture with a new painting (the predictor and the folding);
- ``features``: measuring the painting (Style Features at --style-size: one VGG pass), paid once
  per painting;
- ``adain-encoder``: the VGG encoder up to ``relu4_1`` on the --size² image, what AdaIN (Huang &
  Belongie 2017) pays for every picture before its decoder runs: a lower bound on AdaIN's time, and
  why ganstyle predicts norm parameters (Ghiasi et al. 2017) for its light generator instead.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch


def best_of(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="arbitrary-fast", help="the arbitrary-style model (default arbitrary-fast)")
    p.add_argument("--single", default="elephants-fast", help="a single-style fast model (default elephants-fast)")
    p.add_argument("--style", required=True, help="a painting")
    p.add_argument("--encoder", default=None, help="encoder for Style Features (default: the model's own)")
    p.add_argument("--style-size", type=int, default=512)
    p.add_argument("--size", type=int, default=1024, help="square image side (default 1024)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)

    from ganstyle.core.device import resolve_device
    from ganstyle.core.features import compute_style_features
    from ganstyle.core.hub import encoder_for_identity
    from ganstyle.core.images import load_image
    from ganstyle.core.models import load_style_model
    from ganstyle.core.stylize import stylize
    from ganstyle.core.vgg import load_vgg_encoder

    device = resolve_device(args.device)
    model = load_style_model(args.model, device=device)
    single = load_style_model(args.single, device=device)
    encoder = load_vgg_encoder(args.encoder or encoder_for_identity(model.generator.config.style_encoder) or "vgg19",
                               device=device)
    painting = load_image(args.style)
    image = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(device)
    features = compute_style_features(encoder, painting, style_size=args.style_size)
    figures = {"features": best_of(lambda: compute_style_features(encoder, painting, style_size=args.style_size),
                                   args.repeats, device)}

    def first_picture():
        model.generator.__dict__.pop("_style_choice_cache", None)   # forget the folded generator
        stylize(model, image, style=features)

    figures["arbitrary-first"] = best_of(first_picture, args.repeats, device)
    stylize(single, image)
    figures["single"] = best_of(lambda: stylize(single, image), args.repeats, device)
    stylize(model, image, style=features)
    figures["arbitrary"] = best_of(lambda: stylize(model, image, style=features), args.repeats, device)
    figures["ratio"] = figures["arbitrary"] / figures["single"]
    with torch.no_grad():
        figures["adain-encoder"] = best_of(lambda: encoder(image, ["relu4_1"]), args.repeats, device)
    print(f"# {args.size}x{args.size}, device {device}, threads {torch.get_num_threads()}, best of {args.repeats}")
    for name in ("single", "arbitrary", "arbitrary-first", "features", "adain-encoder"):
        print(f"{name:<16} {figures[name]:7.3f} s")
    print(f"arbitrary / single: {figures['ratio']:.2f}x (goal <= 2x)")
    print(f"adain-encoder / single: {figures['adain-encoder'] / figures['single']:.2f}x (AdaIN's encoder alone)")
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
