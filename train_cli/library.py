"""``ganstyle library``: write a style library of your own, from a library's styles (all or some) and
style files trained on it, as one model folder to use, put in ComfyUI or push to the Hub.

    ganstyle library -o my-library --model library-fast --styles-from runs/my-style --keep ice_palace my-style
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "library", help="write a style library: a library's styles (all or some) plus added style files",
        description="Load a style library, add style files trained on it ('ganstyle train --base LIBRARY'), keep "
                    "the styles you name, and write the result as one model folder (model.safetensors, config.json "
                    "with every style's source and licence, a model card). The shared convolutions are kept as they "
                    "are, so style files trained on the original library also load into the new one.")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="model folder to write")
    p.add_argument("--model", default=None, metavar="REF",
                   help="the style library to start from: registry name, folder or Hub repo "
                        "(default: the registry's default style library)")
    p.add_argument("--styles-from", action="append", default=[], metavar="REF",
                   help="add a style file: its folder, a 'ganstyle train --base' run folder, or a Hub repo "
                        "ORG/NAME[@REV]; repeatable")
    p.add_argument("--keep", nargs="+", default=None, metavar="NAME",
                   help="keep only these styles, in this order (default: every style, added ones last)")
    p.add_argument("--fp16", action="store_true",
                   help="store the weights as float16 (half the size; the shipped libraries are stored so)")
    p.add_argument("--cache-dir", metavar="DIR", default=None, help="Hugging Face cache folder for Hub models")
    p.add_argument("--overwrite", action="store_true", help="replace the model files in an existing DIR")
    p.set_defaults(func=main)
    return p


def main(args) -> int:
    import copy

    import torch

    from ..core.errors import InputError
    from ..core.io import atomic_write_bytes
    from ..core.model_card import model_card
    from ..core.models import default_style_library, load_style_model, with_added_styles
    from ..core.style_files import shared_fingerprint

    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; -o names the folder to write the library into")
    if (out / "model.safetensors").exists() and not args.overwrite:
        raise InputError(f"{out} already holds a model; pass --overwrite to replace it")
    ref = args.model or default_style_library()
    if ref is None:
        raise InputError("no default style library in weights/registry.json; pass --model REF")
    model = load_style_model(ref, device="cpu", cache_dir=args.cache_dir, use_cache=False)
    if not model.generator.config.num_styles:
        raise InputError(f"{ref} is a single-style model, not a style library (its config lists no 'styles')")
    library = with_added_styles(model, args.styles_from, cache_dir=args.cache_dir).generator
    names = library.style_names
    if args.keep:
        unknown = [name for name in args.keep if name not in names]
        if unknown:
            raise InputError(f"--keep: no style named {', '.join(map(repr, unknown))}; the styles are "
                             f"{', '.join(names)}")
        if len(set(args.keep)) != len(args.keep):
            raise InputError("--keep names a style twice")
        library = library.subset([names.index(name) for name in args.keep])

    # add_styles and subset copy the shared weights as they are; only float16 rounding can change them
    # (the fingerprint hashes float32 values, so a float16-stored library keeps its own)
    if args.fp16 and shared_fingerprint(copy.deepcopy(library).half()) != shared_fingerprint(model.generator):
        print(f"note: float16 changes the shared weights of {ref}; style files trained on it will not load "
              f"into {out} (train new ones with --base {out})", file=sys.stderr)
    library.save_pretrained(out, dtype=torch.float16 if args.fp16 else None)
    card = out / "README.md"
    if args.overwrite or not card.exists():
        atomic_write_bytes(card, model_card(out.name, library, images={}).encode())
    print(f"{len(library.style_names)} style(s) ({', '.join(library.style_names)}): {out}", file=sys.stderr)
    print(out)
    return 0
