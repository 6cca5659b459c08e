"""``ganstyle sheet``: every style of a style library (or a model's one style) on one photo, labelled.

    ganstyle sheet photo.jpg -o sheet.png --model library-fast
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sheet", help="every style of a style library on one photo, in one labelled image",
        description="Stylise one photo with every style of a style library (or with a single-style model) and "
                    "write one labelled image: the photo, then one result per style.")
    p.add_argument("photo", help="the photo")
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="image file to write (.png, .jpg, .webp)")
    p.add_argument("--model", default=None, metavar="REF",
                   help="style library or model: registry name, folder, .safetensors file or Hub repo "
                        "(default: the registry's default style library, else its default style)")
    p.add_argument("--size", type=int, default=512, metavar="PX",
                   help="long side the photo is stylised at, and each cell's height in the sheet (default 512)")
    p.add_argument("--device", default="auto", metavar="DEV", help="auto, cpu, cuda, … (default auto)")
    p.add_argument("--styles-from", action="append", default=[], metavar="DIR",
                   help="add a style file to the style library given by --model: the folder (or run folder) written "
                        "by 'ganstyle train --base LIBRARY', or a Hub repo ORG/NAME[@REV] it was pushed to; repeatable")
    p.add_argument("--cache-dir", metavar="DIR", default=None, help="Hugging Face cache folder for Hub models")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.set_defaults(func=main)
    return p


def main(args) -> int:
    from ..core.device import resolve_device
    from ..core.errors import InputError
    from ..core.features import resize_long_side
    from ..core.images import image_format, image_grid, load_image, save_image
    from ..core.models import default_style_library, default_style_model, load_style_model, with_added_styles
    from ..core.stylize import stylize

    out = Path(args.out).expanduser()
    image_format(out)
    if out.exists() and not args.overwrite:
        raise InputError(f"{out} already exists; pass --overwrite to replace it")
    if args.size < 16:
        raise InputError(f"--size must be at least 16 pixels, got {args.size}")
    device = resolve_device(args.device)
    ref = args.model or default_style_library() or default_style_model()
    if ref is None:
        raise InputError("no default style model in weights/registry.json; pass --model REF")
    model = with_added_styles(load_style_model(ref, device=device, cache_dir=args.cache_dir), args.styles_from,
                              cache_dir=args.cache_dir)
    photo = resize_long_side(load_image(args.photo), args.size)
    names = model.generator.style_names or [model.name]
    results = [stylize(model, photo, style=name if model.generator.style_names else None, device=device)
               for name in names]
    sheet = image_grid([[photo, *results]], height=photo.shape[-2], labels=[[Path(args.photo).name, *names]])
    save_image(sheet, out)
    print(f"{len(names)} style(s) of {model.name} on {Path(args.photo).name}: {out}", file=sys.stderr)
    print(out)
    return 0
