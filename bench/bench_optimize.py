"""Benchmark of OptimizeStylize (core.optimize) against a plain single-scale L-BFGS baseline.

For each size it runs the engine with its default settings (coarse to fine) on a real photo and
painting, and prints seconds, peak memory and the final content/style/total losses, all measured
in fp32 at the full size with the same loss. For the baseline sizes it also runs plain fp32 L-BFGS
at full size from the content image (300 iterations by default) and reports

* the default run against it: time ratio, loss ratio, and how long the baseline took to first
  reach the default run's loss;
* a "reach" run: the engine at full size (its L-BFGS, mixed precision and CUDA graphs where
  fast) until its loss is no higher than the baseline's final loss, and the time that took (the
  issue's goal: at most 1/5 of the baseline's time).

Side-by-side PNGs (content | style | engine [| baseline]) and the engine's full-size results go to
--out.

    python bench/bench_optimize.py                      # CPU: 512 1024 2048, baseline at 512
    python bench/bench_optimize.py --sizes 1024 4096    # on a GPU the baseline runs at every size

Goals (issue #3): on an H100, at 1024 px reach the baseline's total loss in at most 1/5 of its time
and 4096 px in under 60 s; on a CPU, 512 px in under 60 s.

The evaluation encoder (``.eval/vgg16_eval.safetensors``) is built by
``../shared/tools/make_eval_encoder.py``; it is a stand-in for ImageNet VGG weights, for
benchmarks only.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys
import time
from pathlib import Path

import torch

from ganstyle.core.device import MIXED_PRECISION_MODES

ROOT = Path(__file__).resolve().parents[1]
MATE = Path("/usr/share/backgrounds/mate")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", default=str(ROOT / ".eval" / "vgg16_eval.safetensors"),
                   help="VGG safetensors file (torchvision layout); default: the evaluation encoder")
    p.add_argument("--content", default=str(MATE / "nature" / "Garden.jpg"), help="content photo")
    p.add_argument("--style", default=str(MATE / "abstract" / "Elephants.jpg"), help="style painting")
    p.add_argument("--style-size", type=int, default=512, help="long side the painting is measured at")
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="output long sides (default 512 1024 2048, plus 4096 on CUDA)")
    p.add_argument("--baseline-sizes", type=int, nargs="*", default=None,
                   help="sizes to run the baseline at (default: 512 on CPU, every size on CUDA; "
                        "none: pass the flag with no value)")
    p.add_argument("--baseline-iters", type=int, default=300, help="L-BFGS iterations of the baseline")
    p.add_argument("--reach-max-steps", type=int, default=600,
                   help="most loss evaluations the reach run may take before giving up")
    p.add_argument("--steps", type=int, default=None, help="engine steps (default: OptimizeOptions')")
    p.add_argument("--start-side", type=int, default=None, help="engine start_side (default: OptimizeOptions')")
    p.add_argument("--tile-size", type=int, default=0, help="engine tile_size (0 = auto)")
    p.add_argument("--mixed-precision", choices=MIXED_PRECISION_MODES, default="auto",
                   help="engine mixed precision")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    p.add_argument("--out", default=str(ROOT / "bench" / "out"), help="folder for the side-by-side PNGs")
    return p.parse_args(argv)


class PeakMemory:
    """Peak memory of a block: CUDA allocator peak, or the process's peak RSS (VmHWM, reset through
    /proc/self/clear_refs where allowed; otherwise ru_maxrss, which only ever grows)."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                pass
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self.peak = _vm_hwm() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.seconds = time.perf_counter() - self.start


def _vm_hwm() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def run_baseline(encoder, content, style, options, iters: int, device):
    """Plain L-BFGS on the full-size image from the content, same loss (StyleObjective), torch's
    default history (100) and strong-Wolfe line search. Returns (image, [(seconds, total loss)])."""
    from ganstyle.core.optimize import StyleObjective

    trace = []
    objective = StyleObjective.create(encoder, content, style, dataclasses.replace(options, cuda_graph=False))
    x = content.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=iters, line_search_fn="strong_wolfe",
                            tolerance_grad=0.0, tolerance_change=1e-12)
    start = time.perf_counter()

    def closure():
        opt.zero_grad()
        total = objective.evaluate(x)["total"]
        trace.append((time.perf_counter() - start, total))
        return torch.tensor(total)

    opt.step(closure)
    return x.detach().clamp(0, 1), trace


def run_until(encoder, content, style, options, target: float):
    """The engine, stopped at the first evaluation whose image has an fp32 loss <= target (or at
    its budget). The engine's own loss (bf16 under mixed precision) picks the candidates; each is
    checked in fp32 on the clamped image, inside the timed run. Returns (image, evaluations)."""
    from ganstyle.core.optimize import evaluate_losses, optimize_stylize

    count = 0

    def progress(step, total, losses, preview):
        nonlocal count
        count += 1
        if losses["total"] > target:
            return False
        return evaluate_losses(encoder, preview, content, style, options)["total"] <= target

    options = dataclasses.replace(options, preview_every=1)   # the image of every evaluation
    return optimize_stylize(encoder, content, style, options, progress=progress), count


def main(argv=None) -> int:
    args = parse_args(argv)
    from ganstyle.core.device import resolve_device
    from ganstyle.core.features import compute_style_features, resize_long_side
    from ganstyle.core.images import image_grid, load_image, save_image
    from ganstyle.core.optimize import OptimizeOptions, evaluate_losses, optimize_stylize
    from ganstyle.core.vgg import load_vgg_encoder_file

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    sizes = args.sizes or ([512, 1024, 2048, 4096] if cuda else [512, 1024, 2048])
    baseline_sizes = set(sizes if cuda else [512]) if args.baseline_sizes is None else set(args.baseline_sizes)
    if not Path(args.encoder).is_file():
        print(f"encoder {args.encoder} not found: build it with ../shared/tools/get_eval_assets.sh "
              f"{ROOT / '.eval'}", file=sys.stderr)
        return 2
    encoder = load_vgg_encoder_file(args.encoder, device=device)
    content_full = load_image(args.content)
    style_image = load_image(args.style)
    style = compute_style_features(encoder, style_image, style_size=args.style_size)
    overrides = {k: v for k, v in (("steps", args.steps), ("start_side", args.start_side)) if v is not None}
    out_dir = Path(args.out)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"device: {torch.cuda.get_device_name(device) if cuda else 'cpu'} ({torch.get_num_threads()} threads), "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; encoder {encoder.identity}; "
          f"content {Path(args.content).name}, style {Path(args.style).name} at {args.style_size} px")
    header = (f"{'size':>5} {'run':<9} {'seconds':>8} {'peak MiB':>9} {'content':>8} {'style':>8} "
              f"{'total':>8}  notes")
    print(header)
    print("-" * len(header))
    if cuda:
        # CUDA's first calls load kernels and pick algorithms (seconds): keep that out of the figures
        small = resize_long_side(content_full, 256).clamp(0, 1).to(device)
        warm = OptimizeOptions(long_side=256, steps=3, min_steps=3, mixed_precision=args.mixed_precision)
        optimize_stylize(encoder, small, style, warm)
        run_baseline(encoder, small, style, warm, 3, device)
        torch.cuda.synchronize(device)
    for size in sizes:
        options = OptimizeOptions(long_side=size, tile_size=args.tile_size,
                                  mixed_precision=args.mixed_precision, **overrides)
        content = resize_long_side(content_full, size).clamp(0, 1).to(device)
        with PeakMemory(device) as mem:
            result = optimize_stylize(encoder, content, style, options)
        losses = evaluate_losses(encoder, result, content, style, options)
        print(f"{size:>5} {'engine':<9} {mem.seconds:8.1f} {mem.peak / 2**20:9.0f} {losses['content']:8.4f} "
              f"{losses['style']:8.4f} {losses['total']:8.4f}  scales "
              + "→".join(f"{max(s.height, s.width)}px×{s.steps}" for s in _plan(content, options)), flush=True)
        row = [content, style_image, result]
        if size in baseline_sizes:
            with PeakMemory(device) as base_mem:
                baseline, trace = run_baseline(encoder, content, style, options, args.baseline_iters, device)
            base_losses = evaluate_losses(encoder, baseline, content, style, options)
            reach = next((t for t, total in trace if total <= losses["total"]), None)
            print(f"{size:>5} {'baseline':<9} {base_mem.seconds:8.1f} {base_mem.peak / 2**20:9.0f} "
                  f"{base_losses['content']:8.4f} {base_losses['style']:8.4f} {base_losses['total']:8.4f}  "
                  f"{args.baseline_iters} L-BFGS iterations, {len(trace)} evaluations", flush=True)
            reach_text = (f"the baseline first reached the engine's loss after {reach:.1f} s "
                          f"({reach / mem.seconds:.1f}x the engine's time)" if reach is not None
                          else "the baseline never reached the engine's loss")
            print(f"{size:>5} {'ratio':<9} {mem.seconds / base_mem.seconds:8.3f} {'':>9} {'':>8} {'':>8} "
                  f"{losses['total'] / base_losses['total']:8.3f}  engine/baseline; {reach_text}", flush=True)
            row.append(baseline)
            reach_options = dataclasses.replace(options, start_side=size, steps=args.reach_max_steps)
            with PeakMemory(device) as reach_mem:
                reached, evaluations = run_until(encoder, content, style, reach_options, base_losses["total"])
            reach_losses = evaluate_losses(encoder, reached, content, style, options)
            print(f"{size:>5} {'reach':<9} {reach_mem.seconds:8.1f} {reach_mem.peak / 2**20:9.0f} "
                  f"{reach_losses['content']:8.4f} {reach_losses['style']:8.4f} {reach_losses['total']:8.4f}  "
                  f"single scale, {evaluations} evaluations; time/baseline "
                  f"{reach_mem.seconds / base_mem.seconds:.3f}, loss/baseline "
                  f"{reach_losses['total'] / base_losses['total']:.3f}", flush=True)
            save_image(reached, out_dir / f"optimize_{size}_reach.png")
        save_image(result, out_dir / f"optimize_{size}_result.png")
        path = save_image(image_grid([row], height=min(512, size)), out_dir / f"optimize_{size}.png")
        print(f"{'':>5} {'':<9} wrote {path}", flush=True)
    return 0


def _plan(content, options):
    from ganstyle.core.optimize import plan_scales
    return plan_scales(content.shape[-2], content.shape[-1], options)


if __name__ == "__main__":
    sys.exit(main())
