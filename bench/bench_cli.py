"""Per-image time of ``ganstyle stylize FOLDER`` end to end (read, stylise, write PNG).

Runs the real command on a folder of N square PNGs and on a folder of 1, and prints
``(time(N) - time(1)) / (N - 1)``: the cost of one more image once the model is loaded.

    python bench/bench_cli.py                       # 6 images of 1024², the pack's sample images
    python bench/bench_cli.py --photos runs/photos/holdout --count 12 --size 1024 -- --dtype fp32

Arguments after ``--`` go to ``ganstyle stylize`` (e.g. ``--model``, ``--dtype``, ``--device``).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def square_pngs(sources: list[Path], folder: Path, count: int, size: int) -> None:
    """``count`` PNGs of ``size``², centre crops of ``sources`` taken in turn."""
    folder.mkdir(parents=True)
    for i in range(count):
        with Image.open(sources[i % len(sources)]) as im:
            im = im.convert("RGB")
            side = min(im.size)
            left, top = (im.width - side) // 2, (im.height - side) // 2
            square = im.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
            square.save(folder / f"{i:03d}.png")


def timed_run(folder: Path, out: Path, extra: list[str]) -> float:
    command = [sys.executable, "-m", "ganstyle.train_cli", "stylize", str(folder), "-o", str(out), *extra]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=ROOT / "weights" / "samples",
                        help="folder of photos to crop the test images from (default: the pack's samples)")
    parser.add_argument("--count", type=int, default=6, help="images in the large folder (default 6)")
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels (default 1024)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each folder; the fastest counts")
    args = parser.parse_args(argv)
    if args.count < 2:
        parser.error("--count must be at least 2")
    sources = sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not sources:
        parser.error(f"{args.photos}: no .jpg/.png photos")
    with tempfile.TemporaryDirectory(prefix="bench_cli_") as tmp:
        tmp = Path(tmp)
        square_pngs(sources, tmp / "one", 1, args.size)
        square_pngs(sources, tmp / "many", args.count, args.size)
        times = {}
        for name in ("one", "many"):
            times[name] = min(timed_run(tmp / name, tmp / f"out_{name}", [*extra, "--overwrite"])
                              for _ in range(args.repeats))
        per_image = (times["many"] - times["one"]) / (args.count - 1)
    print(f"ganstyle stylize {' '.join(extra) or '(defaults)'}: folder of 1 {times['one']:.2f} s, "
          f"folder of {args.count} {times['many']:.2f} s → {per_image:.3f} s per {args.size}² image")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
