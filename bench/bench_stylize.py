"""Inference speed of the style generators: the plain Johnson et al. baseline against the "fast"
preset through the ganstyle engine, the tiled 4096 px path with its peak memory, and the seam check.

    python bench/bench_stylize.py --device cpu
    python bench/bench_stylize.py --device cuda --batch 8 --tiled-size 4096
    python bench/bench_stylize.py --device cpu --fast-model runs/painting/model   # a trained model

Figures printed (one line each, then a JSON summary):

- ``johnson-fp32-plain``: ``StyleGenerator(johnson)(x)`` in fp32, NCHW, inference mode: the baseline;
- ``fast-engine``: :func:`ganstyle.core.stylize.stylize` with the fast preset and default settings
  ("auto" precision: on CUDA fp32/TF32 up to 2048² pixels per pass and fp16 above, with CUDA
  graphs for repeated shapes; bf16 on CPUs with AMX, else fp32); speed-up = baseline / this;
- ``fast-fp32-plain`` and ``johnson-engine`` for reference;
- ``tiled``: the fast preset on a ``--tiled-size`` image under a ``--max-memory`` activation budget,
  with the peak memory (CUDA: max allocated; CPU: growth of the process's peak RSS);
- ``seam``: max/mean |tiled − untiled| at ``--seam-size`` with forced ``--seam-tile`` tiles, in the
  default precision and in fp32 (statistics from the whole image: ~1e-6 in fp32), and the
  difference for an image 4x over the memory budget, statistics gathered exactly or from a thumbnail.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import torch

try:
    import ganstyle  # noqa: F401  (installed: pip install -e .)
except ImportError:  # a bare checkout (e.g. a GPU box): the repository root is the package
    import importlib.util
    _root = Path(__file__).resolve().parents[1]
    _spec = importlib.util.spec_from_file_location("ganstyle", _root / "__init__.py",
                                                   submodule_search_locations=[str(_root)])
    sys.modules["ganstyle"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["ganstyle"])

from ganstyle.core.generator import StyleGenerator, preset_config  # noqa: E402
from ganstyle.core.models import load_style_model  # noqa: E402
from ganstyle.core.stylize import stylize  # noqa: E402

PHOTOS = Path("/usr/share/backgrounds/mate/nature")


def test_image(size: int, batch: int = 1) -> torch.Tensor:
    """A real photo resized to size × size when one is available, else smooth noise."""
    photos = sorted(PHOTOS.glob("*.jpg")) if PHOTOS.is_dir() else []
    if photos:
        from ganstyle.core.images import load_image
        img = load_image(photos[0])
        img = torch.nn.functional.interpolate(img, size=(size, size), mode="bilinear", antialias=True,
                                              align_corners=False).clamp(0, 1)
    else:
        g = torch.Generator().manual_seed(0)
        img = torch.nn.functional.interpolate(torch.rand(1, 3, size // 16, size // 16, generator=g),
                                              size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    return img.expand(batch, -1, -1, -1).contiguous()


def timed(fn, device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Best wall time of ``repeats`` calls, in seconds (best-of: the machine may be shared)."""
    for _ in range(warmup):
        fn()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    best = float("inf")
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="cpu, cuda, auto (default auto)")
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024], help="square image sizes (default 512 1024)")
    p.add_argument("--batch", type=int, default=1, help="images per forward pass for the speed runs (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per figure; the best is kept (default 3)")
    p.add_argument("--fast-model", default=None, help="a trained fast-preset model reference (default: random init)")
    p.add_argument("--tiled-size", type=int, default=4096, help="side of the tiled test image; 0 skips (default 4096)")
    p.add_argument("--max-memory", type=float, default=1.0, help="activation budget for the tiled run, GiB (default 1)")
    p.add_argument("--seam-size", type=int, default=1024, help="image side for the seam check; 0 skips (default 1024)")
    p.add_argument("--seam-tile", type=int, default=512, help="forced tile side for the seam check (default 512)")
    p.add_argument("--variants", action="store_true", help="also time fp32/fp16/bf16 and NCHW/NHWC engine variants")
    p.add_argument("--oom-check", type=int, default=0, metavar="PX",
                   help="CUDA only: stylise a PX-sized image under a memory cap with an unlimited budget, so the "
                        "engine hits a real out-of-memory error and must halve its tiles (default: skip)")
    p.add_argument("--oom-cap-gib", type=float, default=3.0, help="memory cap for --oom-check (default 3)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"device: {name}; torch {torch.__version__}; load average at start: {load}")
    torch.manual_seed(0)
    johnson = StyleGenerator(preset_config("johnson")).eval().requires_grad_(False).to(device)
    if args.fast_model:
        fast = load_style_model(args.fast_model, device=device).generator
    else:
        fast = StyleGenerator(preset_config("fast")).eval().requires_grad_(False).to(device)
    results: dict = {"device": name, "batch": args.batch, "speed": {}}

    for size in args.sizes:
        x = test_image(size, args.batch).to(device)
        row = {}
        with torch.inference_mode():
            row["johnson-fp32-plain"] = timed(lambda x=x: johnson(x), device, args.repeats)
            row["fast-fp32-plain"] = timed(lambda x=x: fast(x), device, args.repeats)
        row["fast-engine"] = timed(lambda x=x: stylize(fast, x, tile=None), device, args.repeats)
        row["johnson-engine"] = timed(lambda x=x: stylize(johnson, x, tile=None), device, args.repeats)
        if args.variants:
            for label, kw in {"fast-engine-no-graphs": {"cuda_graphs": False},
                              "fast-engine-fp32": {"dtype": "fp32", "channels_last": False},
                              "fast-engine-fp16-nchw": {"dtype": "fp16", "channels_last": False},
                              "fast-engine-fp16-nhwc": {"dtype": "fp16", "channels_last": True},
                              "fast-engine-bf16-nchw": {"dtype": "bf16", "channels_last": False},
                              "fast-engine-bf16-nhwc": {"dtype": "bf16", "channels_last": True}}.items():
                if device.type == "cpu" and ("fp16" in label or "graphs" in label):
                    continue
                row[label] = timed(lambda x=x, kw=kw: stylize(fast, x, tile=None, **kw), device, args.repeats)
        for key, seconds in row.items():
            print(f"{size:>5}px  {key:<20} {1000 * seconds / args.batch:9.1f} ms/image  "
                  f"{args.batch / seconds:8.1f} images/s")
        speedup = row["johnson-fp32-plain"] / row["fast-engine"]
        print(f"{size:>5}px  fast-engine vs johnson-fp32-plain: {speedup:.1f}x throughput")
        results["speed"][size] = {k: round(1000 * v / args.batch, 2) for k, v in row.items()}
        results["speed"][size]["speedup"] = round(speedup, 2)
        if size == args.sizes[-1]:
            ref = stylize(fast, x[:1], tile=None, dtype="fp32", channels_last=False)
            err = (stylize(fast, x[:1], tile=None) - ref).abs().max()
            print(f"{size:>5}px  fast-engine default precision vs fp32: max |diff| = {err:.2e}")
            results["precision_max_diff"] = float(err)
        del x

    if args.tiled_size:
        big = test_image(args.tiled_size)
        budget = int(args.max_memory * (1 << 30))
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        rss0 = peak_rss_mb()
        t = time.perf_counter()
        ticks = []
        out = stylize(fast, big, max_memory=budget, progress=lambda d, n: ticks.append(n))
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t
        if device.type == "cuda":
            peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
            peak_text = f"peak CUDA memory {peak:.0f} MiB above the model"
        else:
            peak = peak_rss_mb() - rss0
            peak_text = f"peak RSS grew by {peak:.0f} MiB (input+output images alone: " \
                        f"{2 * big.numel() * 4 / 2**20:.0f} MiB)"
        print(f"tiled {args.tiled_size}px fast-engine, budget {args.max_memory:g} GiB: {seconds:.2f} s, "
              f"{ticks[-1] if ticks else 1} forward passes, {peak_text}")
        results["tiled"] = {"size": args.tiled_size, "seconds": round(seconds, 3), "passes": ticks[-1] if ticks else 1,
                            "peak_mib": round(peak, 1), "budget_gib": args.max_memory}
        del big, out

    if args.seam_size:
        x = test_image(args.seam_size).to(device)
        results["seam"] = {}
        for label, dtype in (("default precision", None), ("fp32", "fp32")):
            whole = stylize(fast, x, tile=None, dtype=dtype)
            tiled = stylize(fast, x, tile=args.seam_tile, dtype=dtype)
            err = (tiled - whole).abs()
            print(f"seam check {args.seam_size}px, {args.seam_tile}px tiles, {label}: max |tiled - untiled| = "
                  f"{err.max():.2e}, mean {err.mean():.2e}")
            results["seam"][label] = {"max": float(err.max()), "mean": float(err.mean())}
        bpp = fast.activation_bytes_per_pixel(torch.float32)
        # An image 4x over the memory budget: statistics gathered over the tiles, or a thumbnail
        for mode in ("exact", "thumbnail"):
            start = time.perf_counter()
            over = stylize(fast, x, max_memory=bpp * (args.seam_size // 2) ** 2, dtype="fp32", tile_statistics=mode)
            seconds = time.perf_counter() - start
            terr = (over - whole).abs()
            print(f"image 4x over the memory budget, fp32, tile_statistics={mode!r}: max |result - untiled| "
                  f"{terr.max():.2e}, mean {terr.mean():.2e}, {seconds:.2f} s")
            results["seam"][mode] = {"max": float(terr.max()), "mean": float(terr.mean()), "seconds": seconds}

    if args.oom_check and device.type == "cuda":
        # A real out-of-memory: cap this process's CUDA memory, claim a huge budget, and let the
        # engine find out. It must halve the tile until it fits and still finish.
        torch.cuda.empty_cache()
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(args.oom_cap_gib * (1 << 30) / total, torch.cuda.current_device())
        big = test_image(args.oom_check)
        t = time.perf_counter()
        ticks = []
        out = stylize(fast, big, max_memory=1 << 40, progress=lambda d, n: ticks.append(n))
        torch.cuda.synchronize()
        print(f"OOM check {args.oom_check}px under a {args.oom_cap_gib:g} GiB cap: finished in "
              f"{time.perf_counter() - t:.2f} s with {ticks[-1]} forward passes (after retries), "
              f"output finite: {bool(torch.isfinite(out).all())}")
        results["oom_check"] = {"size": args.oom_check, "passes": ticks[-1]}

    results["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
