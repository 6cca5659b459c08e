"""Quality figures of style models on held-out photos, against Optimize Stylize as the reference.

For each photo (resized to --long-side) and each --model it stylises once and prints, per photo
and as the median over photos (metrics: ganstyle.core.quality):

- style:   Gram style ratio, the relative Gram style loss of the result over that of the photo,
           against the style image's Grams (lower = more of the style; 1 = none of it);
- edges:   edge correlation, Pearson correlation of the Sobel magnitude of photo vs result luminance;
- tone:    tone correlation, Pearson correlation of the luminance average-pooled 16x;
- contrast: std of that pooled luminance, result over photo;
- content: relative relu4_2 error of the result against the photo.

Optimize Stylize (core.optimize with its default options at --long-side) runs on the same pairs
as the reference row (slow on a CPU, ~1 min per photo at 1024 px; --no-optimize skips it).
--goals checks each model's medians against the issue's goals (tone >= 0.6, contrast >= 0.6,
style <= 0.05, edges >= 0.35). --sheet writes a contact sheet: rows = photos, columns = photo |
Optimize Stylize | each model, each cell 512 px on the long side, with --crops a full-resolution
centre crop of each too.

    ganstyle data photos runs/photos          # the held-out photos: runs/photos/holdout
    python bench/bench_quality.py runs/photos/holdout --model elephants-fast \\
        --style /usr/share/backgrounds/mate/abstract/Elephants.jpg \\
        --encoder .eval/vgg16_eval.safetensors --sheet bench/out/quality.jpg --goals

Arbitrary-style models (any style image in one pass) are measured on held-out photos AND held-out
styles: --styles DIR (each subfolder or image one style) pairs style i with photo i mod N (with
--photos-per-style K, photos iK … iK+K-1), gives each model the style's features and Optimize
Stylize the same style, and adds the style image as the sheet's second column:

    python bench/bench_quality.py runs/photos/holdout --styles styles/holdout --model arbitrary-fast \\
        --encoder .eval/vgg16_eval.safetensors --goals --goal-style 0.08 --sheet bench/out/arbitrary.jpg

Another tool's pictures join the table and the sheet with --external LABEL=DIR: DIR holds one
picture per pair, named PHOTO__STYLE.png (the photo's and the style's file stems; PHOTO.png with
--style), made beforehand (e.g. a peer's command line over the same pairs); its time is not measured.

The evaluation encoder (.eval/vgg16_eval.safetensors, built by ../shared/tools/make_eval_encoder.py)
is a stand-in for ImageNet VGG weights, for benchmarks only; the default is the user default, vgg19.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("style", "edges", "tone", "contrast", "content")
GOALS = (("tone", ">=", 0.6), ("contrast", ">=", 0.6), ("style", "<=", 0.05), ("edges", ">=", 0.35))
OPTIMIZE = "Optimize Stylize"
GOAL_STYLE = None     # --goal-style


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photos", nargs="*", default=[str(ROOT / "runs" / "photos" / "holdout")],
                   help="held-out photo files and/or folders (default: runs/photos/holdout, made by "
                        "'ganstyle data photos runs/photos')")
    p.add_argument("--style", default=None,
                   help="the style image the models were trained on, or a folder of a domain's images (its target "
                        "is their averaged Gram)")
    p.add_argument("--styles", default=None, metavar="DIR",
                   help="instead of --style: a folder of (held-out) styles, each subfolder or image one style, for "
                        "arbitrary-style models; style i is paired with photo i mod N")
    p.add_argument("--photos-per-style", type=int, default=1, metavar="K",
                   help="with --styles: photos per style (default 1)")
    p.add_argument("--goal-style", type=float, default=0.05,
                   help="the style-ratio goal (default 0.05, single styles; arbitrary styles: 0.08)")
    p.add_argument("--library-style", metavar="SPEC", default=None,
                   help="for style libraries among the models: the style (or blend) to apply, e.g. 'story'")
    p.add_argument("--model", action="append", default=[], metavar="REF",
                   help="style model: registry name, folder or .safetensors file (repeatable)")
    p.add_argument("--label", action="append", default=[], metavar="TEXT",
                   help="name of the matching --model in tables and sheets, in the same order (default: its REF)")
    p.add_argument("--palette", action="append", type=float, default=[], metavar="P",
                   help="per --model, in order (like --label): stylize(palette=P) for an arbitrary-style model, the "
                        "result's colours moved that far to the painting's palette (default 0)")
    p.add_argument("--external", action="append", default=[], metavar="LABEL=DIR",
                   help="another tool's results for the same pairs, DIR/PHOTO__STYLE.png, measured and shown too")
    p.add_argument("--encoder", default="vgg19",
                   help="VGG for the style/content figures: registry name, Hub repo or file (default vgg19, "
                        "the user default; ours: .eval/vgg16_eval.safetensors)")
    p.add_argument("--long-side", type=int, default=1024, help="photos are resized to this long side (default 1024)")
    p.add_argument("--style-size", type=int, default=512, help="long side the style image is measured at (default 512)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N photos (0 = all)")
    p.add_argument("--no-optimize", action="store_true", help="skip the Optimize Stylize reference row")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (default auto)")
    p.add_argument("--json", metavar="OUT", default=None, help="also write every figure to this JSON file")
    p.add_argument("--sheet", metavar="PATH", default=None, help="write a labelled contact sheet here")
    p.add_argument("--cell", type=int, default=512, help="contact-sheet cell long side in px (default 512)")
    p.add_argument("--crops", action="store_true",
                   help="add a full-resolution centre crop (--cell px square) of each image to the sheet")
    p.add_argument("--gallery", metavar="PATH", default=None,
                   help="also write a compact sheet without crops (photo | Optimize Stylize | models): the "
                        "README gallery")
    p.add_argument("--goals", action="store_true", help="print PASS/FAIL of each model's medians against the goals")
    p.add_argument("--reference-cache", metavar="DIR", default=None,
                   help="keep the Optimize Stylize results here (PNG + seconds) and reuse them on later runs with "
                        "the same photos, style, sizes and encoder: the slow reference is computed once")
    return p.parse_args(argv)


def load_photos(sources, long_side: int, limit: int = 0) -> list[tuple[str, torch.Tensor]]:
    """Files/folders → [(name, (1, 3, H, W) with long side ``long_side``)]."""
    from ganstyle.core.data import list_image_files
    from ganstyle.core.features import resize_long_side
    from ganstyle.core.images import load_image

    files, _ = list_image_files(sources, what="photos")
    files = files[:limit] if limit else files
    return [(f.stem, resize_long_side(load_image(f), long_side).clamp(0, 1)) for f in files]


def measure(encoder, style, photo: torch.Tensor, result: torch.Tensor) -> dict[str, float]:
    """The five figures of one (photo, result) pair; the result is resized to the photo if needed."""
    from ganstyle.core import quality

    result = result.float().cpu()
    if result.shape[-2:] != photo.shape[-2:]:
        result = F.interpolate(result, size=photo.shape[-2:], mode="bilinear", align_corners=False)
    result = result.clamp(0, 1)
    return {"style": float(quality.gram_style_ratio(encoder, photo, result, style)[0]),
            "edges": float(quality.edge_correlation(photo, result)[0]),
            "tone": float(quality.tone_correlation(photo, result)[0]),
            "contrast": float(quality.contrast_ratio(photo, result)[0]),
            "content": float(quality.content_error(encoder, photo, result)[0])}


def style_sources(args) -> list[tuple[str, list[Path]]]:
    """[(style name, its image files)]: the one --style, or each subfolder/image of --styles."""
    from ganstyle.core.data import list_image_files
    from ganstyle.core.training.styles import styles_in_folder

    if args.styles is None:
        files, _ = list_image_files(args.style, what="style images")
        return [(Path(args.style).stem, files)]
    return [(name, list_image_files(str(path), what="style images")[0]) for name, path in styles_in_folder(args.styles)]


def medians(rows: list[dict]) -> dict[str, dict[str, float]]:
    """{method: {metric: median over photos}}."""
    out: dict[str, dict[str, float]] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        out[method] = {m: statistics.median(r[m] for r in mine) for m in METRICS}
        out[method]["seconds"] = statistics.median(r["seconds"] for r in mine)
    return out


def check_goals(figures: dict[str, float]) -> list[tuple[str, str, float, float, bool]]:
    """[(metric, op, value, target, passed)] for one method's medians."""
    results = []
    for metric, op, target in GOALS:
        target = GOAL_STYLE if metric == "style" and GOAL_STYLE is not None else target
        value = figures[metric]
        results.append((metric, op, value, target, value >= target if op == ">=" else value <= target))
    return results


def format_table(rows: list[dict], meds: dict[str, dict[str, float]]) -> str:
    width = max([len(m) for m in meds] + [20])
    head = f"{'photo':<28} {'method':<{width}} " + " ".join(f"{m:>8}" for m in METRICS) + f" {'s':>6}"
    lines = [head]
    for r in rows:
        lines.append(f"{r['photo'][:28]:<28} {r['method']:<{width}} "
                     + " ".join(f"{r[m]:>8.3f}" for m in METRICS) + f" {r['seconds']:>6.1f}")
    lines.append("-" * len(head))
    for method, fig in meds.items():
        lines.append(f"{'median':<28} {method:<{width}} " + " ".join(f"{fig[m]:>8.3f}" for m in METRICS)
                     + f" {fig['seconds']:>6.1f}")
    return "\n".join(lines)


def write_sheet(path: Path, photos, results: dict[str, list[torch.Tensor]], cell: int, crops: bool,
                style_column: list[torch.Tensor] | None = None) -> None:
    """Rows = photos; columns = photo | each method (cell px on the long side, labelled); with
    ``crops`` a centre crop at full resolution of each, cell px square, so 100 % zoom shows texture."""
    from PIL import Image, ImageDraw

    from ganstyle.core.features import resize_long_side
    from ganstyle.core.images import to_pil

    columns = [("photo", [p for _, p in photos])] + ([("style", style_column)] if style_column else []) \
        + list(results.items())
    if crops:
        columns += [(f"{name} (100% crop)", [_centre_crop(t, cell) for t in images]) for name, images in columns]
    label_h, pad = 18, 6
    grid = [[images[row] if name.endswith("(100% crop)") else resize_long_side(images[row].float().cpu(), cell)
             for name, images in columns] for row in range(len(photos))]
    heights = [max(img.shape[-2] for img in cells) for cells in grid]
    sheet = Image.new("RGB", (len(columns) * (cell + pad) + pad, sum(heights) + len(grid) * (label_h + pad) + pad),
                      "white")
    draw = ImageDraw.Draw(sheet)
    y = pad
    for (photo_name, _), cells, height in zip(photos, grid, heights):
        for col, ((name, _), image) in enumerate(zip(columns, cells)):
            x = pad + col * (cell + pad)
            draw.text((x, y + 3), f"{photo_name[:24]} | {name}" if col == 0 else name, fill="black")
            sheet.paste(to_pil(image.clamp(0, 1)), (x, y + label_h))
        y += height + label_h + pad
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=92)


def _reference_path(args, encoder, photo_name: str, style_files: list[Path]) -> Path | None:
    """Where the Optimize Stylize result of one photo is cached (None: no cache). The name holds
    everything the result depends on: photo, style file, sizes and encoder."""
    if not args.reference_cache:
        return None
    import hashlib
    where = "|".join(str(Path(f).resolve()) for f in style_files)
    key = f"{where}|{args.style_size}|{args.long_side}|{encoder.identity}"
    folder = Path(args.reference_cache)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{photo_name.replace('/', '_')}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.png"


def _centre_crop(image: torch.Tensor, side: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[..., top:top + side, left:left + side]


def run(args) -> dict:
    from ganstyle.core.device import resolve_device
    from ganstyle.core.features import compute_style_features
    from ganstyle.core.images import load_image, save_image
    from ganstyle.core.models import load_style_model, model_kind, takes_style_features
    from ganstyle.core.optimize import OptimizeOptions, optimize_stylize
    from ganstyle.core.stylize import stylize
    from ganstyle.core.vgg import load_vgg_encoder

    device = resolve_device(args.device)
    encoder = load_vgg_encoder(args.encoder, device=device)
    styles = [(name, files, compute_style_features(encoder, [load_image(f) for f in files], style_size=args.style_size))
              for name, files in style_sources(args)]
    photo_list = load_photos(args.photos, args.long_side, args.limit)
    if args.styles is None:     # every photo with the one style
        pairs = [(name, photo, styles[0]) for name, photo in photo_list]
    else:                       # style i with photos iK … iK+K-1 (cycling)
        k = args.photos_per_style
        pairs = [(f"{photo_list[j % len(photo_list)][0]}/{style[0]}", photo_list[j % len(photo_list)][1], style)
                 for i, style in enumerate(styles) for j in range(i * k, i * k + k)]
    photos = [(name, photo) for name, photo, _ in pairs]
    if len(args.label) > len(args.model):
        raise SystemExit(f"{len(args.label)} --label for {len(args.model)} --model")
    labels = args.label + args.model[len(args.label):]
    if len(set(labels)) != len(labels):
        raise SystemExit(f"two --model rows share a label ({labels}): give each its own --label")
    if len(args.palette) > len(args.model):
        raise SystemExit(f"{len(args.palette)} --palette for {len(args.model)} --model")
    palettes = dict(zip(labels, args.palette + [0.0] * (len(args.model) - len(args.palette))))
    models = [(label, load_style_model(ref, device=device)) for label, ref in zip(labels, args.model)]
    print(f"# {len(photos)} photos at {args.long_side} px; style {args.style or args.styles}; encoder "
          f"{encoder.source or args.encoder} ({encoder.arch}); device {device}; threads {torch.get_num_threads()}; "
          f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}", file=sys.stderr)

    externals = dict(item.split("=", 1) for item in args.external)
    methods = ([] if args.no_optimize else [OPTIMIZE]) + [ref for ref, _ in models] + list(externals)
    results: dict[str, list[torch.Tensor]] = {m: [] for m in methods}
    rows = []
    for name, photo, (_, style_files, style) in pairs:
        for method in methods:
            start = time.perf_counter()
            if method == OPTIMIZE:
                cached = _reference_path(args, encoder, name, style_files)
                if cached is not None and cached.is_file():
                    out, seconds = load_image(cached), json.loads(cached.with_suffix(".json").read_text())["seconds"]
                else:
                    out = optimize_stylize(encoder, photo.to(device), style, OptimizeOptions(long_side=args.long_side))
                    seconds = time.perf_counter() - start
                    if cached is not None:
                        save_image(out, cached)    # 8-bit PNG: figures on reuse differ by rounding only
                        cached.with_suffix(".json").write_text(json.dumps({"seconds": seconds}))
            elif method in externals:
                stem = name.replace("/", "__") if args.styles is not None else name
                out, seconds = load_image(Path(externals[method]) / f"{stem}.png"), float("nan")
            else:
                model = dict(models)[method]
                kind = model_kind(model)
                features = takes_style_features(model)
                choice = style if features else args.library_style if kind == "style library" else None
                out = stylize(model, photo.to(device), device=device, style=choice,
                              palette=palettes[method] if features else 0.0)
                seconds = time.perf_counter() - start
            out = out.float().cpu()
            results[method].append(out)
            rows.append({"photo": name, "method": method, "seconds": seconds, **measure(encoder, style, photo, out)})
            print(f"  {name}: {method} in {seconds:.1f} s: "
                  + " ".join(f"{m} {rows[-1][m]:.3f}" for m in METRICS), file=sys.stderr)
    meds = medians(rows)
    report = {"photos": [n for n, _ in photos], "long_side": args.long_side, "style": args.style or args.styles,
              "encoder": args.encoder, "rows": rows, "medians": meds,
              "goals": {m: [dict(zip(("metric", "op", "value", "target", "passed"), g)) for g in check_goals(meds[m])]
                        for m in meds if m != OPTIMIZE}}
    style_column = None if args.styles is None else [load_image(files[0]) for _, _, (_, files, _) in pairs]
    if args.sheet:
        write_sheet(Path(args.sheet), photos, results, args.cell, args.crops, style_column)
    if args.gallery:
        write_sheet(Path(args.gallery), photos, results, args.cell, False, style_column)
    return report


def main(argv=None) -> int:
    global GOAL_STYLE
    args = parse_args(argv)
    GOAL_STYLE = args.goal_style
    if (args.style is None) == (args.styles is None):
        print("give the style: --style IMAGE_OR_DOMAIN, or --styles DIR of held-out styles", file=sys.stderr)
        return 2
    if not args.model and args.no_optimize:
        print("nothing to measure: give --model REF and/or drop --no-optimize", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    report = run(args)
    print(format_table(report["rows"], report["medians"]))
    if args.goals:
        for method, goals in report["goals"].items():
            for g in goals:
                print(f"{'PASS' if g['passed'] else 'FAIL'} {method}: median {g['metric']} {g['value']:.3f} "
                      f"{g['op']} {g['target']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))
    for kind, path in (("contact sheet", args.sheet), ("gallery", args.gallery)):
        if path:
            print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
