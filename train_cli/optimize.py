"""``ganstyle optimize``: Optimize Stylize (Gatys et al.) on image files and folders: each image
itself is optimised until its VGG features match the photo's content and the style images' Gram
matrices (see :mod:`ganstyle.core.optimize`). No style model is needed, only a VGG encoder.

    ganstyle optimize photo.jpg --style-image painting.jpg -o out.png
    ganstyle optimize photos/ -o stylised/ --style-image a.jpg:0.7 --style-image b.jpg:0.3 --long-side 1024

The optimisation flags are made from :class:`~ganstyle.core.optimize.OptimizeOptions`' fields, the
declaration the OptimizeStylize node builds its inputs from, so the same settings give the node's
result. Ctrl-C stops at the end of the current loss evaluation and writes the image as it is then
(exit status 130); a second Ctrl-C quits at once without writing it.
"""
from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
from pathlib import Path

from .stylize import _is_number, collect_inputs, plan_outputs

# How the OptimizeOptions flags are presented; what they are comes from the dataclass.
GROUPS = {
    "optimisation": ("steps", "long_side", "start_side", "min_steps", "optimizer", "lr", "precondition",
                     "history_size"),
    "loss": ("content_weight", "style_weight", "tv_weight", "init", "seed"),
    "performance": ("mixed_precision", "tile_size", "cuda_graph"),
}
METAVARS = {"steps": "N", "long_side": "PX", "start_side": "PX", "min_steps": "N", "lr": "LR", "history_size": "N",
            "content_weight": "W", "style_weight": "W", "tv_weight": "W", "seed": "N", "tile_size": "PX"}
# Fields with a hand-made flag: style_layer_weights (a mapping: LAYER=WEIGHT items) and color_mode
# (--preserve-color [MODE], as in `ganstyle stylize`). preview_every only feeds the node's preview
# display; the command has none (Ctrl-C writes the optimiser's latest image itself), so it runs
# without previews.
HAND_MADE = ("style_layer_weights", "color_mode", "preview_every")
DEFAULT_ENCODER = "vgg19"   # the Load VGG Encoder node's default


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..core.features import StyleFeaturesOptions
    from ..core.optimize import OptimizeOptions
    from .options import add_config_arguments, field_doc

    p = subparsers.add_parser(
        "optimize", help="stylise images by optimisation (Gatys et al.): any style image, no style model",
        description="Optimize Stylize from the command line: each input image is optimised (L-BFGS, coarse to "
                    "fine) until its VGG features match its own content and the style images' Gram matrices; "
                    "the same settings give the OptimizeStylize node's result. Slow, best quality, works at print "
                    "sizes. Results are written as PNG files into the output folder; a single output file name "
                    "picks its format by its suffix. Ctrl-C stops at the end of the current step and writes the "
                    "image as it is then (exit status 130; a second Ctrl-C quits without writing it).")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files and/or folders of images (folders are searched recursively)")
    p.add_argument("-o", "--out", required=True, metavar="OUT",
                   help="output folder (created; results are PNG files), or, for exactly one input image, an "
                        "image file name whose suffix picks the format (.png, .jpg, .webp, .bmp, .tif)")
    style = p.add_argument_group("style")
    style.add_argument("--style-image", action="append", required=True, metavar="IMAGE[:WEIGHT]",
                       help="the style image; repeat to blend several (blend weights after ':', default equal), "
                            "e.g. --style-image a.jpg:0.7 --style-image b.jpg:0.3")
    style.add_argument("--style-size", type=int, default=None, metavar="PX",
                       help=f"{field_doc(StyleFeaturesOptions, 'style_size')} (default "
                            f"{StyleFeaturesOptions.style_size})")
    style.add_argument("--encoder", default=DEFAULT_ENCODER, metavar="REF",
                       help="VGG encoder that measures content and style: registry name, .safetensors file or "
                            f"Hugging Face Hub repo 'org/name[@revision]' (default {DEFAULT_ENCODER})")
    style.add_argument("--style-layer-weights", dest="layer_weight_items", nargs="+", default=None,
                       metavar="LAYER=W",
                       help="weight of each style layer in the style loss (default: equal weights over the "
                            "style's layers, relu1_1 to relu5_1), e.g. --style-layer-weights relu1_1=0.5 relu3_1=2")
    modes = OptimizeOptions.__dataclass_fields__["color_mode"].metadata["choices"]
    style.add_argument("--preserve-color", "--color-mode", dest="color_mode", nargs="?", const="luminance",
                       default=None, choices=modes, metavar="MODE",
                       help=f"{field_doc(OptimizeOptions, 'color_mode')} MODE: {', '.join(modes)}; the flag "
                            f"alone means 'luminance' (default {OptimizeOptions.color_mode})")
    add_config_arguments(p, OptimizeOptions, groups=GROUPS, exclude=HAND_MADE, metavars=METAVARS)
    run = p.add_argument_group("run")
    run.add_argument("--device", default="auto", metavar="DEV",
                     help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps… (default auto)")
    run.add_argument("--cache-dir", metavar="DIR", default=None,
                     help="Hugging Face cache folder for Hub encoders (default: the standard HF cache)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace existing output files (default: stop before overwriting anything)")
    p.set_defaults(func=main)
    return p


def build_options(args: argparse.Namespace):
    """The checked OptimizeOptions of the command line (what is not given keeps the field's default)."""
    from ..core.errors import ConfigError, InputError
    from ..core.optimize import OptimizeOptions
    from .options import options_from_args

    given = options_from_args(args, OptimizeOptions)
    if args.layer_weight_items:
        given["style_layer_weights"] = _layer_weights(args.layer_weight_items)
    try:
        return OptimizeOptions(**given, preview_every=0).checked()
    except ConfigError as e:   # "OptimizeOptions: field 'long_side' is …" → "--long-side is …"
        message = str(e).removeprefix("OptimizeOptions: ")
        raise InputError(re.sub(r"field '(\w+)'", lambda m: _flag(m.group(1)), message)) from None


def style_features_options(args: argparse.Namespace):
    """The checked StyleFeaturesOptions (--style-size) of the command line."""
    from ..core.config import OptionError
    from ..core.features import StyleFeaturesOptions
    from .options import options_from_args

    try:
        return StyleFeaturesOptions(**options_from_args(args, StyleFeaturesOptions)).checked()
    except OptionError as e:   # "style_size is 8, …" → "--style-size is 8, …"
        raise e.renamed({"style_size": "--style-size"}) from None


def _flag(field: str) -> str:
    return {"color_mode": "--preserve-color", "style_layer_weights": "--style-layer-weights"}.get(
        field, f"--{field.replace('_', '-')}")


def _layer_weights(items: list[str]) -> dict[str, float]:
    from ..core.errors import InputError
    from ..core.vgg import STYLE_LAYERS

    weights = {}
    for item in items:
        layer, sep, value = item.partition("=")
        if not sep or not _is_number(value):
            raise InputError(f"--style-layer-weights expects LAYER=WEIGHT items such as relu3_1=2, got '{item}'")
        if layer not in STYLE_LAYERS:
            raise InputError(f"--style-layer-weights: unknown layer '{layer}'; the style layers are "
                             f"{', '.join(STYLE_LAYERS)}")
        weights[layer] = float(value)
    return weights


def style_images(specs: list[str]) -> tuple[list, list[float]]:
    """``IMAGE[:WEIGHT]`` arguments (the syntax of ``ganstyle stylize --style-image``) → (images, weights)."""
    from ..core.errors import InputError
    from ..core.images import load_image

    images, weights = [], []
    for spec in specs:
        path, sep, weight = spec.rpartition(":")
        if not sep or not _is_number(weight):
            path, weight = spec, "1"
        path = Path(path).expanduser()
        if not path.is_file():
            raise InputError(f"style image not found: {path}")
        images.append(load_image(path))
        weights.append(float(weight))
    return images, weights


def image_sizes(plan: list[tuple[Path, Path]]) -> list[tuple[int, int] | None]:
    """(height, width) of each input from its header (no decoding), None where it is not an image."""
    from PIL import Image

    sizes = []
    for src, _ in plan:
        try:
            with Image.open(src) as im:
                sizes.append((im.height, im.width))
        except Exception:
            sizes.append(None)
    return sizes


class _CtrlC:
    """While active (main thread only), the first Ctrl-C only sets ``requested``: the progress
    callback then stops the optimiser at the end of its current step, which returns the image as it
    is. A second Ctrl-C raises KeyboardInterrupt at once."""

    def __init__(self, note):
        self.requested, self.note, self.previous = False, note, None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.note("Ctrl-C: stopping after this step to write the image as it is (Ctrl-C again to quit "
                  "without writing it)")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


class _Work:
    """Progress in pixel-steps (a step at a finer scale costs its pixels), so the bar's estimate
    holds although the finer scales' steps are the slow ones."""

    def __init__(self, plans: list):
        self.plans = plans
        self.costs = [sum(s.steps * s.height * s.width for s in plan) for plan in plans]   # exact: ints
        self.total = sum(self.costs)

    def start(self, index: int) -> int:
        """Work done before image ``index``."""
        return sum(self.costs[:index])

    def done(self, index: int, step: int) -> tuple[int, str]:
        """Work done after ``step`` evaluations of image ``index``, and where: 'scale 2/3 (512 px)'."""
        work = self.start(index)
        for k, scale in enumerate(self.plans[index]):
            here = min(step, scale.steps)
            work += here * scale.height * scale.width
            step -= here
            if step <= 0 or k == len(self.plans[index]) - 1:
                return work, f"scale {k + 1}/{len(self.plans[index])} ({max(scale.height, scale.width)} px)"
        return work, ""


def main(args) -> int:
    from ..core import optimize as core_optimize
    from ..core.device import resolve_device
    from ..core.errors import InputError
    from ..core.features import compute_style_features
    from ..core.vgg import load_vgg_encoder

    # Everything is checked before anything is written.
    options = build_options(args)
    style_options = style_features_options(args)
    plan = plan_outputs(collect_inputs(args.inputs), Path(args.out).expanduser())
    existing = [dst for _, dst in plan if dst.exists()]
    if existing and not args.overwrite:
        raise InputError(f"{len(existing)} output file(s) already exist, e.g. {existing[0]}; pass --overwrite "
                         f"to replace them")
    sizes = image_sizes(plan)
    jobs = [(src, dst) for (src, dst), size in zip(plan, sizes) if size is not None]
    if not jobs:
        raise InputError(f"none of the {len(plan)} input image(s) could be read, e.g. {plan[0][0]}")
    images, weights = style_images(args.style_image)
    device = resolve_device(args.device)
    encoder = load_vgg_encoder(args.encoder, device=device, cache_dir=args.cache_dir)
    print(f"encoder: {encoder.arch} ({encoder.source}) on {device}", file=sys.stderr)
    style = compute_style_features(encoder, images, weights, style_size=style_options.style_size)
    work = _Work([core_optimize.plan_scales(*size, options) for size in sizes if size is not None])

    def run(image, progress):
        return core_optimize.optimize_stylize(encoder, image.to(device), style, options, progress=progress).cpu()

    written, skipped, stopped = optimize_files(jobs, run, work)
    skipped = [src for (src, _), size in zip(plan, sizes) if size is None] + skipped
    if stopped:
        print(f"ganstyle optimize: interrupted {stopped}"
              + (f" ({written} of {len(plan)} image(s) written)" if len(plan) > 1 else ""), file=sys.stderr)
        return 130
    if skipped:
        if not written:
            raise InputError(f"none of the {len(plan)} input image(s) could be read, e.g. {skipped[0]}")
        print(f"ganstyle optimize: warning: skipped {len(skipped)} of {len(plan)} files that could not be read "
              f"as images, e.g. {skipped[0]}", file=sys.stderr)
    print(f"wrote {written} image(s) to {plan[0][1] if len(plan) == 1 else Path(args.out)}")
    return 0


def optimize_files(jobs: list[tuple[Path, Path]], run, work: _Work) -> tuple[int, list[Path], str | None]:
    """Read, ``run(image, progress)`` and write each ``(src, dst)`` in turn, under one progress bar.
    Returns (images written, unreadable inputs, None or how a Ctrl-C stopped the run)."""
    from tqdm import tqdm

    from ..core.errors import InputError
    from ..core.images import load_image, save_image

    written, skipped = 0, []
    fmt = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"
    with tqdm(total=work.total, desc="optimize", bar_format=fmt, file=sys.stderr) as bar, \
            _CtrlC(lambda text: tqdm.write(text, file=sys.stderr)) as ctrl_c:
        for index, (src, dst) in enumerate(jobs):
            if ctrl_c.requested:   # pressed between two images
                return written, skipped, f"before {src}"
            try:
                image = load_image(src)
            except InputError:   # unreadable after all (e.g. truncated): skipped, like `ganstyle stylize`
                skipped.append(src)
                bar.update(work.start(index + 1) - bar.n)
                continue
            cut = None

            def progress(step, total, losses, preview, index=index, src=src, dst=dst):
                nonlocal cut
                done, where = work.done(index, step)
                bar.set_postfix_str(f"{src.name} {where} step {step}/{total} loss {losses['total']:.4g}", refresh=False)
                bar.update(done - bar.n)
                if ctrl_c.requested:   # the optimiser stops here and returns this step's image
                    cut = f"at step {step}/{total} of {src}; wrote the image as it was to {dst}"
                    return True
                return None

            save_image(run(image, progress), dst)
            written += 1
            if cut:
                return written, skipped, cut
    return written, skipped, None
