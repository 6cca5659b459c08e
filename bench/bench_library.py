"""Style library figures: the cost of masks and blends, and what happens at a mask's edge.

For a style library and photos (resized to --size on the long side) it prints

- time per image of one style, a blend of two, and a two-style mask (a hard vertical edge in the
  middle), each one pass through ``core.stylize`` (best of --repeats), and the mask's cost over
  one style (goal: at most 1.3x);
- at the mask's edge, per photo: the largest change between the two pixel columns at the edge in
  the masked result ("step"), the same for the two single-style results pasted together at the
  edge (what compositing two runs gives), and for each single style alone (the photo's own
  edges); a seam would show as a masked step above the pasted one. Also the mean difference
  of each half (away from the edge by --margin px) from its single-style result.

    python bench/bench_library.py runs/photos/holdout --model library-fast --styles story maps
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_quality import load_photos  # noqa: E402


def timed(fn, repeats: int) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photos", nargs="*", default=[str(ROOT / "runs" / "photos" / "holdout")])
    p.add_argument("--model", required=True, help="a style library (registry name, folder, file or Hub repo)")
    p.add_argument("--styles", nargs=2, metavar=("LEFT", "RIGHT"), default=None,
                   help="the two styles (default: the library's first two)")
    p.add_argument("--size", type=int, default=1024, help="long side of the photos (default 1024)")
    p.add_argument("--limit", type=int, default=4, help="photos used (default 4)")
    p.add_argument("--margin", type=int, default=128, help="px from the edge where the halves are compared")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per figure; the best counts")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="auto")
    args = p.parse_args(argv)

    from ganstyle.core.device import resolve_device
    from ganstyle.core.models import load_style_model
    from ganstyle.core.stylize import stylize

    device = resolve_device(args.device)
    model = load_style_model(args.model, device=device)
    names = model.generator.style_names
    if len(names) < 2:
        p.error(f"{args.model} is not a style library of two styles or more")
    left, right = args.styles or names[:2]
    photos = load_photos(args.photos, args.size, args.limit)
    print(f"# {model.name}: {len(names)} styles; {left} | {right}; {len(photos)} photos at {args.size} px; "
          f"device {device}, dtype {args.dtype}, threads {torch.get_num_threads()}", file=sys.stderr)
    rows, times = [], {"one style": [], "blend of two": [], "two-style mask": []}
    for name, photo in photos:
        h, w = photo.shape[-2:]
        mask = torch.zeros(h, w)
        mask[:, w // 2:] = 1.0

        def run(photo=photo, **kw):
            return stylize(model, photo, device=device, dtype=args.dtype, **kw)

        run(style=left), run(style=left, masks=[(mask, right)])          # warm-up (derived generators)
        t1, a = timed(lambda: run(style=left), args.repeats)
        tb, _ = timed(lambda: run(style=f"{left}:0.5, {right}:0.5"), args.repeats)
        tm, both = timed(lambda mask=mask: run(style=left, masks=[(mask, right)]), args.repeats)
        b = run(style=right)
        times["one style"].append(t1)
        times["blend of two"].append(tb)
        times["two-style mask"].append(tm)
        e = w // 2
        pasted = torch.cat([a[..., :e], b[..., e:]], -1)

        def step(img, e=e):
            return float((img[..., e] - img[..., e - 1]).abs().max())

        m = args.margin
        rows.append({"photo": name, "step masked": step(both), "step pasted": step(pasted),
                     f"step {left}": step(a), f"step {right}": step(b),
                     f"left vs {left}": float((both[..., :e - m] - a[..., :e - m]).abs().mean()),
                     f"right vs {right}": float((both[..., e + m:] - b[..., e + m:]).abs().mean()),
                     f"{left} vs {right}": float((a - b).abs().mean())})
    keys = list(rows[0])[1:]
    print(f"{'photo':<28} " + " ".join(f"{k:>16}" for k in keys))
    for r in rows:
        print(f"{r['photo'][:28]:<28} " + " ".join(f"{r[k]:>16.3f}" for k in keys))
    print(f"{'median':<28} " + " ".join(f"{statistics.median(r[k] for r in rows):>16.3f}" for k in keys))
    one = statistics.median(times["one style"])
    for what, values in times.items():
        med = statistics.median(values)
        print(f"{what:<16} {med:.3f} s per {args.size}px image ({med / one:.2f}x one style)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
