"""``ganstyle stylize``: run a trained style model on image files and folders.

    ganstyle stylize photo.jpg -o out.png --model runs/painting/model
    ganstyle stylize photos/ more.jpg -o stylised/ --model org/name@v1 --strength 0.8 --preserve-color
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The flag of each option whose flag is not ``--field-name`` (the core's refusals name fields).
FLAG_NAMES = {"color_mode": "--preserve-color", "tile_size": "--tile", "precision": "--precision"}


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..core.color import COLOR_MODES
    from ..core.features import StyleFeaturesOptions
    from ..core.stylize import StylizeOptions
    from ..core.video import VideoOptions
    from .options import add_config_arguments, field_doc

    p = subparsers.add_parser(
        "stylize", help="stylise images with a trained style model",
        description="Stylise image files and folders with a trained style model, at any resolution (large "
                    "images run in seamless tiles in bounded memory). Results are written as PNG files into "
                    "the output folder; a single output file name picks its format by its suffix (.png, .jpg, "
                    ".webp, .bmp, .tif). Files that cannot be read as images are skipped with one warning "
                    "line that counts them, and the rest are written (exit status 0); the exit status is 2 "
                    "only if no input could be read.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files and/or folders of images (folders are searched recursively)")
    p.add_argument("-o", "--out", required=True, metavar="OUT",
                   help="output folder (created; results are PNG files), or, for exactly one input image, an "
                        "image file name whose suffix picks the format (.png, .jpg, .webp, .bmp, .tif)")
    p.add_argument("--model", default=None, metavar="REF",
                   help="style model: registry name, model folder, .safetensors file (config beside it), or "
                        "Hugging Face Hub repo 'org/name[@revision]' (downloaded into the Hub cache); "
                        "default: the registry's default style, shipped in weights/ (no download)")
    p.add_argument("--preserve-color", dest="color_mode", nargs="?", const="luminance", default=None,
                   choices=COLOR_MODES,
                   help="keep the input's colours: 'luminance' (the default when the flag is given without "
                        "a value) or 'histogram'; 'none' keeps the style's colours "
                        f"(default {StylizeOptions.color_mode})")
    p.add_argument("--style", default=None, metavar="SPEC",
                   help="for a style library: the style to apply, a name or a blend such as 'story:0.7, maps:0.3' "
                        "(with --mask: the style of what no mask covers); 'ganstyle sheet' shows every style")
    p.add_argument("--mask", action="append", default=[], metavar="MASK=SPEC",
                   help="for a style library: an image whose brightness (0-1, any size, soft edges blend) marks a "
                        "region, and the style for it, e.g. --mask sky.png=maps; repeatable; one pass for all")
    arbitrary = p.add_argument_group("any style image (arbitrary-style models such as arbitrary-fast)")
    arbitrary.add_argument("--style-image", action="append", default=[], metavar="IMAGE[:WEIGHT]",
                           help="the style to apply, from any image, in one pass; repeat to blend several (weights "
                                "after ':', default equal). With --mask MASK=IMAGE each region takes its own image")
    arbitrary.add_argument("--encoder", default=None, metavar="REF",
                           help="VGG encoder that measures the style images: the one the model reads (its model "
                                "card names it): registry name, .safetensors file or Hub repo (default: the "
                                "model's own when the registry knows it, e.g. vgg16-hed, else vgg19)")
    arbitrary.add_argument("--style-size", type=int, default=None, metavar="PX",
                           help=f"{field_doc(StyleFeaturesOptions, 'style_size')} (default "
                                f"{StyleFeaturesOptions.style_size})")
    p.add_argument("--tile", default="auto", metavar="auto|none|PX",
                   help="tile side in pixels; 'auto' tiles only images that do not fit in memory, 'none' "
                        "never tiles (default auto)")
    p.add_argument("--device", default="auto", metavar="DEV",
                   help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps… (default auto)")
    p.add_argument("--styles-from", action="append", default=[], metavar="DIR",
                   help="add a style file to the style library given by --model: the folder (or run folder) written "
                        "by 'ganstyle train --base LIBRARY', or a Hub repo ORG/NAME[@REV] it was pushed to; repeatable")
    p.add_argument("--cache-dir", metavar="DIR", default=None,
                   help="Hugging Face cache folder for Hub models (default: the standard HF cache)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing output files (default: stop before overwriting anything)")
    # --strength, --overlap, --dtype/--precision, --tile-statistics, --palette: from StylizeOptions
    add_config_arguments(p, StylizeOptions, exclude=("color_mode", "tile_size"),
                         groups={"stylize options": ("strength", "precision", "tile_statistics", "overlap", "palette")},
                         flags={"precision": ["--dtype", FLAG_NAMES["precision"]]},
                         metavars={"strength": "S", "overlap": "PX", "palette": "P"})
    video = p.add_argument_group("video (a video file, or a folder of frames with --video)")
    video.add_argument("--video", action="store_true",
                       help="treat the input folder as the frames of one clip (in name order): steady, "
                            "flicker-free stylisation; video files (.mp4, .mov, .mkv, .webm, …) always are")
    add_config_arguments(p, VideoOptions, groups={"video": ("temporal", "statistics", "statistics_frames",
                                                            "flow_preset")},
                         metavars={"temporal": "S", "statistics_frames": "N"})
    p.set_defaults(func=main)
    return p


def parse_tile(text: str):
    from ..core.errors import InputError

    value = str(text).strip().lower()
    if value == "auto":
        return "auto"
    if value in ("none", "off", "0"):
        return None
    try:
        tile = int(value)
    except ValueError:
        raise InputError(f"--tile must be 'auto', 'none' or a number of pixels, got '{text}'") from None
    if tile < 1:
        raise InputError(f"--tile must be positive, got {tile}")
    return tile


def parse_mask(text: str):
    """``MASK=SPEC`` → (mask (H, W) float in [0, 1]: the image's luminance, or its alpha when it has
    one, spec)."""
    from ..core.errors import InputError

    path, sep, spec = text.rpartition("=")
    if not sep or not path or not spec.strip():
        raise InputError(f"--mask expects MASK_IMAGE=STYLE, e.g. sky.png=maps; got '{text}'")
    return load_mask(path), spec.strip()


def load_mask(path: str):
    """A mask image → (H, W) float32 in [0, 1]: its alpha channel if it has one, else its luminance."""
    import numpy as np
    import torch
    from PIL import Image

    from ..core.errors import InputError

    try:
        with Image.open(Path(path).expanduser()) as im:
            im.load()
            band = im.getchannel("A") if "A" in im.getbands() else im.convert("L")
            array = np.asarray(band, dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise InputError(f"mask image not found: {path}") from None
    except Exception as e:
        raise InputError(f"{path}: cannot read the mask image ({type(e).__name__}: {e})") from None
    return torch.from_numpy(array.copy())


def style_features_for(args, model, device, features_options=None):
    """--style-image (and, for an arbitrary-style model, each --mask's image) → (style, masks) for
    stylize(): StyleFeatures measured with --encoder at ``features_options.style_size`` (default:
    --style-size). Other models: the names as given."""
    from ..core.errors import InputError
    from ..core.features import compute_style_features
    from ..core.hub import encoder_for_identity
    from ..core.images import load_image
    from ..core.models import default_any_style_model, model_kind, takes_style_features
    from ..core.vgg import load_vgg_encoder

    masks = [parse_mask(text) for text in args.mask]
    features_options = features_options or checked_options(args)[2]
    if not takes_style_features(model):
        if args.style_image:
            raise InputError(f"--style-image needs an any-style model (such as {default_any_style_model()}); "
                             f"{model.name} "
                             f"has fixed styles (use --style, or Optimize Stylize: ganstyle optimize)")
        return args.style, masks
    if args.style:
        raise InputError("an arbitrary-style model takes --style-image IMAGE, not --style NAME")
    if not args.style_image and not masks:
        raise InputError(f"{model.name} is an arbitrary-style model: give the style as --style-image painting.jpg")
    layers = None
    if args.encoder is None and model_kind(model) == "encoder-decoder":
        # the model carries its encoder (the layers it fuses): paintings are measured offline with it
        encoder, layers = model.generator.encoder, model.generator.config.levels
    else:
        encoder_ref = args.encoder or encoder_for_identity(model.generator.config.style_encoder) or "vgg19"
        encoder = load_vgg_encoder(encoder_ref, device=device, cache_dir=args.cache_dir)

    def features(specs: list[str]):
        images, weights = [], []
        for spec in specs:
            path, sep, weight = spec.rpartition(":")
            if not sep or not _is_number(weight):
                path, weight = spec, "1"
            try:
                images.append(load_image(Path(path).expanduser()))
            except FileNotFoundError:
                raise InputError(f"style image not found: {path}") from None
            weights.append(float(weight))
        return compute_style_features(encoder, images, weights, style_size=features_options.style_size,
                                      **({"layers": layers} if layers else {}))

    style = features(args.style_image) if args.style_image else None
    return style, [(mask, features([spec])) for mask, spec in masks]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def collect_inputs(inputs: list[str]) -> list[tuple[Path, Path]]:
    """Input arguments → ``(image file, path relative to its folder argument)`` pairs."""
    from ..core.errors import InputError
    from ..core.images import IMAGE_SUFFIXES

    found: list[tuple[Path, Path]] = []
    for arg in inputs:
        path = Path(arg).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise InputError(f"{path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            found.extend((f, f.relative_to(path)) for f in files)
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            raise InputError(f"{path}: no such file or folder")
    return found


def plan_outputs(pairs: list[tuple[Path, Path]], out: Path) -> list[tuple[Path, Path]]:
    """Where each input goes: ``out`` itself for a single input and an image-file ``out``, else
    ``out/<relative path>.png``. Two inputs mapping to one output, or an output that is an input,
    is an error (nothing would be lost silently)."""
    from ..core.errors import InputError
    from ..core.images import IMAGE_SUFFIXES

    if out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir():
        if len(pairs) != 1:
            raise InputError(f"-o {out} is an image file name but there are {len(pairs)} input images; "
                             f"give a folder")
        plan = [(pairs[0][0], out)]
    else:
        plan = [(src, out / rel.with_suffix(".png")) for src, rel in pairs]
    targets: dict[Path, Path] = {}
    inputs = {src.resolve() for src, _ in plan}
    for src, dst in plan:
        key = dst.resolve()
        if key in targets:
            raise InputError(f"{src} and {targets[key]} would both be written to {dst}; rename one")
        if key in inputs:
            raise InputError(f"{dst} is an input image; choose another output folder")
        targets[key] = src
    return plan


def load_model(args, device):
    from ..core.errors import InputError
    from ..core.models import default_any_style_model, default_style_model, load_style_model, with_added_styles

    ref = args.model or (default_any_style_model() if getattr(args, "style_image", None) else default_style_model())
    if ref is None:
        raise InputError("no default style model in weights/registry.json; pass --model REF")
    model = with_added_styles(load_style_model(ref, device=device, cache_dir=args.cache_dir), args.styles_from,
                              cache_dir=args.cache_dir)
    print(f"model: {model.name} ({model.config.preset}, {model.source}) on {device}", file=sys.stderr)
    return model


def checked_options(args):
    """(StylizeOptions, VideoOptions, StyleFeaturesOptions) of the command line, checked (what is
    not given keeps the field's default); a bad value raises the core's
    :class:`~ganstyle.core.config.OptionError`, which :func:`main` words with the flag's name."""
    from ..core.features import StyleFeaturesOptions
    from ..core.stylize import StylizeOptions
    from ..core.video import VideoOptions
    from .options import options_from_args

    return tuple(cls(**options_from_args(args, cls)).checked()
                 for cls in (StylizeOptions, VideoOptions, StyleFeaturesOptions))


def flag_names() -> dict[str, str]:
    """{option (field name): its flag} for the options this command takes."""
    import dataclasses

    from ..core.features import StyleFeaturesOptions
    from ..core.stylize import StylizeOptions
    from ..core.video import VideoOptions

    fields = [f.name for cls in (StylizeOptions, VideoOptions, StyleFeaturesOptions) for f in dataclasses.fields(cls)]
    return {name: FLAG_NAMES.get(name, f"--{name.replace('_', '-')}") for name in [*fields, "style"]}


def stylize_clip(args, options, video, features) -> int:
    """One clip (a video file, or a frame folder with --video) → a video file or a frame folder,
    frame by frame in bounded memory, with the temporal settings of VideoOptions."""
    from tqdm import tqdm

    from ..core.device import resolve_device
    from ..core.errors import InputError
    from ..core.video import VideoStylizer
    from ..core.video_io import FrameWriter, read_frames

    if len(args.inputs) != 1:
        raise InputError(f"a clip is one video file or one folder of frames, got {len(args.inputs)} inputs")
    if args.mask:
        raise InputError("--mask applies to images, not to clips")
    out = Path(args.out).expanduser()
    if out.exists() and not args.overwrite and (out.is_file() or any(out.iterdir())):
        raise InputError(f"{out} already exists; pass --overwrite to replace it")
    device = resolve_device(args.device)
    model = load_model(args, device)
    style, _ = style_features_for(args, model, device, features)
    stylizer = VideoStylizer(model, video, options, style=style, device=device)
    frames, fps = read_frames(args.inputs[0])
    try:
        with FrameWriter(out, fps) as writer:
            for frame in tqdm(frames, desc="stylize", unit="frame"):
                writer.write(stylizer(frame))
    finally:
        stylizer.close()
    if writer.count == 0:
        raise InputError(f"{args.inputs[0]}: no frames")
    print(f"wrote {writer.count} frame(s) to {out}")
    return 0


def main(args) -> int:
    from ..core.config import OptionError

    try:
        return _stylize(args)
    except OptionError as e:      # the core's refusal of an option, said with its flag
        raise e.renamed(flag_names()) from None


def _stylize(args) -> int:
    from ..core.device import resolve_device
    from ..core.errors import InputError
    from ..core.stylize import stylize
    from ..core.video_io import is_video_file

    tile = parse_tile(args.tile)
    options, video, features = checked_options(args)     # before anything is loaded or written
    if args.video or any(is_video_file(i) for i in args.inputs):
        return stylize_clip(args, options, video, features)
    plan = plan_outputs(collect_inputs(args.inputs), Path(args.out).expanduser())
    existing = [dst for _, dst in plan if dst.exists()]
    if existing and not args.overwrite:
        raise InputError(f"{len(existing)} output file(s) already exist, e.g. {existing[0]}; pass --overwrite "
                         f"to replace them")
    device = resolve_device(args.device)
    # the model is loaded once in fp32; stylize() converts (and remembers) per precision
    model = load_model(args, device)
    style, masks = style_features_for(args, model, device, features)
    skipped = stylize_files(plan, lambda image: stylize(model, image, options, style=style, masks=masks, tile=tile,
                                                        device=device))
    written = len(plan) - len(skipped)
    if skipped:
        example = f"{skipped[0][1]}"
        if not written:
            raise InputError(f"none of the {len(plan)} input image(s) could be read, e.g. {example}")
        print(f"ganstyle stylize: warning: skipped {len(skipped)} of {len(plan)} files that could not be read "
              f"as images, e.g. {example}", file=sys.stderr)
    print(f"wrote {written} image(s) to {plan[0][1] if len(plan) == 1 else Path(args.out)}")
    return 0


def stylize_files(plan: list[tuple[Path, Path]], run, prefetch: int = 2) -> list[tuple[Path, Exception]]:
    """Read, ``run`` (a (1, 3, H, W) → (1, 3, H, W) function) and write each ``(src, dst)`` of
    ``plan``, in order. Reading the next images and encoding the previous result happen in two
    threads while ``run`` works on the current one (Pillow releases the GIL while it decodes and
    compresses), so a folder costs about the network's time per image, not the sum of the three.
    Unreadable inputs are skipped and returned as ``(src, error)``; a failed write stops the run
    with its error (files already written stay)."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from ..core.errors import InputError
    from ..core.images import load_image, save_image

    skipped: list[tuple[Path, Exception]] = []
    todo = iter(plan)
    with ThreadPoolExecutor(1, thread_name_prefix="read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="write") as writer, \
            tqdm(total=len(plan), desc="stylize", unit="image", disable=len(plan) < 2) as bar:
        reads: deque = deque()
        writing = None

        def read_ahead():
            while len(reads) < prefetch and (job := next(todo, None)) is not None:
                reads.append((job, reader.submit(load_image, job[0])))

        read_ahead()
        while reads:
            (src, dst), read = reads.popleft()
            read_ahead()
            try:
                image = read.result()
            except InputError as e:  # unreadable or not really an image: skipped, like train does
                skipped.append((src, e))
                bar.update()
                continue
            result = run(image)
            if writing is not None:
                writing.result()       # a write error stops here; at most one result waits in memory
            writing = writer.submit(save_image, result, dst)
            writing.add_done_callback(lambda _: bar.update())
        if writing is not None:
            writing.result()
    return skipped
