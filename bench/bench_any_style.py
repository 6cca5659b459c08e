"""Speed of the any-style encoder–decoder beside arbitrary-fast and Optimize Stylize, in one run.

    python bench/bench_any_style.py --style painting.jpg                       # CPU, 1024², fp32
    python bench/bench_any_style.py --style painting.jpg --device cuda --precision fp16
    python bench/bench_any_style.py --style painting.jpg --optimize            # + Optimize Stylize (minutes)

Prints, for one --size² picture (best of --repeats), with the painting's Style Features already
measured (``features``: what one painting costs once):

- ``any-style``: :func:`ganstyle.core.stylize.stylize` with the encoder–decoder (--model), and the
  time of each of its levels (encode, fuse, decode);
- ``arbitrary-fast``: the norm-predicting any-style model (--arbitrary), the painting seen before;
- ``optimize``: Optimize Stylize at its defaults with --size as the long side (with --optimize).
"""
from __future__ import annotations

import argparse
import json
import sys

import torch
from bench_arbitrary import best_of  # the same timing rule (best of N, CUDA synchronised)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="any-style", help="the encoder–decoder model (default any-style)")
    p.add_argument("--arbitrary", default="arbitrary-fast", help="the norm-predicting model ('' to skip)")
    p.add_argument("--style", required=True, help="a painting")
    p.add_argument("--encoder", default="vgg16-hed", help="encoder for Style Features (default vgg16-hed)")
    p.add_argument("--style-size", type=int, default=512)
    p.add_argument("--size", type=int, default=1024, help="square picture side (default 1024)")
    p.add_argument("--precision", default="fp32", help="fp32, fp16, bf16 or auto (default fp32)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--optimize", action="store_true", help="also time Optimize Stylize once (slow on a CPU)")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)

    from ganstyle.core.decoder_stylize import stylize_level
    from ganstyle.core.device import resolve_device, resolve_dtype
    from ganstyle.core.features import compute_style_features
    from ganstyle.core.images import load_image
    from ganstyle.core.models import load_style_model
    from ganstyle.core.stylize import stylize
    from ganstyle.core.vgg import load_vgg_encoder

    device = resolve_device(args.device)
    dtype = resolve_dtype(args.precision, device)
    encoder = load_vgg_encoder(args.encoder, device=device)
    painting = load_image(args.style)
    image = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(device)
    features = compute_style_features(encoder, painting, style_size=args.style_size)
    figures = {"features": best_of(lambda: compute_style_features(encoder, painting, style_size=args.style_size),
                                   args.repeats, device)}
    model = load_style_model(args.model, device=device, dtype=dtype)
    run = lambda: stylize(model, image, style=features, dtype=dtype, tile=None)  # noqa: E731
    run()
    figures["any-style"] = best_of(run, args.repeats, device)
    from ganstyle.core.decoder_stylize import _Regions

    regions = _Regions([features], None, model.generator.config.levels)
    with torch.inference_mode():
        for level in model.generator.config.levels:
            figures[f"any-style {level}"] = best_of(
                lambda level=level: stylize_level(model.generator, image.to(dtype), level, regions, 1.0),
                args.repeats, device)
    if args.arbitrary:
        arbitrary = load_style_model(args.arbitrary, device=device)
        stylize(arbitrary, image, style=features, dtype=dtype)
        figures["arbitrary-fast"] = best_of(lambda: stylize(arbitrary, image, style=features, dtype=dtype),
                                            args.repeats, device)
    if args.optimize:
        from ganstyle.core.optimize import OptimizeOptions, optimize_stylize

        figures["optimize"] = best_of(lambda: optimize_stylize(encoder, image, features,
                                                               OptimizeOptions(long_side=args.size)), 1, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"# {args.size}² picture, {dtype}, {name}, {torch.get_num_threads()} threads; best of {args.repeats}",
          file=sys.stderr)
    for key, seconds in figures.items():
        print(f"{key:28s} {seconds * 1000:10.1f} ms")
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
