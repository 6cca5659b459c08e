"""Training throughput: steps/s and images/s of :class:`ganstyle.core.trainer.Trainer`.

    python bench/bench_train.py --encoder .eval/vgg16_eval.safetensors --size 256 --batch 8 \\
        --steps 20 --device cuda            # or --device cpu

Times the full GAN step (generator step with content + style + TV + adversarial losses, then the
discriminator step) after a few untimed warm-up steps, for each generator preset. Data are random
crops of the sample images (decoded once, as in real training), so the figures are the networks'
cost, not JPEG decoding. Prints one line per preset; on a shared machine also note the load.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from ganstyle.core.device import MIXED_PRECISION_MODES

ROOT = Path(__file__).resolve().parent.parent


def bench_preset(preset: str, args, encoder) -> dict:
    from ganstyle.core.trainer import TrainConfig, Trainer

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(content=args.content, style=args.style, out=str(Path(tmp) / "run"), preset=preset,
                             image_size=args.size, batch_size=args.batch, warmup_steps=0,
                             lambda_adv=0.0 if args.no_gan else 0.05, device=args.device,
                             mixed_precision=args.mixed_precision, progress=False)
        trainer = Trainer(config, encoder=encoder)
        sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
        for step in range(args.warmup):
            trainer.optimize_parameters(step)
        sync()
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for step in range(args.warmup, args.warmup + args.steps):
            trainer.optimize_parameters(step)
        sync()
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() / 2**30 if trainer.device.type == "cuda" else float("nan")
        return {"preset": preset, "device": str(trainer.device), "amp": "bf16" if trainer.amp else "fp32",
                "steps_per_s": args.steps / seconds, "images_per_s": args.steps * args.batch / seconds,
                "s_per_step": seconds / args.steps, "peak_gib": peak,
                "g_params": sum(p.numel() for p in trainer.generator.parameters())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", default=str(ROOT / ".eval" / "vgg16_eval.safetensors"),
                   help="VGG weights for the losses (a local .safetensors file or registry name)")
    p.add_argument("--size", type=int, default=256, help="training crop size in pixels")
    p.add_argument("--batch", type=int, default=8, help="images per step")
    p.add_argument("--steps", type=int, default=10, help="timed steps per preset")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (allocator, cuDNN autotuning)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, auto")
    p.add_argument("--mixed-precision", default="auto", choices=MIXED_PRECISION_MODES,
                   help="'auto' = bf16 autocast on CUDA, fp32 elsewhere")
    p.add_argument("--presets", nargs="+", default=["johnson", "fast"], help="generator presets to time")
    p.add_argument("--no-gan", action="store_true", help="time the warm-up step (no discriminator) instead")
    p.add_argument("--content", default=str(ROOT / "weights" / "samples" / "photo.jpg"), help="content image(s)/folder")
    p.add_argument("--style", default=str(ROOT / "weights" / "samples" / "painting.jpg"), help="style image(s)/folder")
    args = p.parse_args(argv)

    from ganstyle.core.device import resolve_device
    from ganstyle.core.vgg import load_vgg_encoder

    device = resolve_device(args.device)
    encoder = load_vgg_encoder(args.encoder, deepest="relu5_1", device=device)
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    print(f"# torch {torch.__version__} on {gpu}; encoder {encoder.arch} {encoder.identity}; "
          f"{args.size}px, batch {args.batch}, {args.steps} timed steps; load average {load[0]}")
    print(f"{'preset':8} {'device':8} {'amp':5} {'G params':>9} {'s/step':>8} {'steps/s':>8} {'images/s':>9} "
          f"{'peak GiB':>9}")
    for preset in args.presets:
        r = bench_preset(preset, args, encoder)
        print(f"{r['preset']:8} {r['device']:8} {r['amp']:5} {r['g_params']:>9,} {r['s_per_step']:>8.3f} "
              f"{r['steps_per_s']:>8.3f} {r['images_per_s']:>9.2f} {r['peak_gib']:>9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
