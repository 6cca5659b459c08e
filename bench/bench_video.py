"""Flicker of stylised video: temporal warping error of per-frame vs temporal GAN Stylize.

E_warp (Lai et al. 2018, "Learning Blind Video Temporal Consistency"): the mean over frames of
the mean squared difference between stylised frame t and stylised frame t-1 moved into frame t
by the motion between them, over the pixels visible in both. Lower = steadier.

Two clips:

(a) **synthetic, with known motion**: a real photo seen by a moving camera (pan, zoom and
    rotation) with a foreground layer (a crop of another photo) sliding across it, so parts of
    the background are hidden and revealed. The true motion and the occluded pixels are known
    exactly, so E_warp does not depend on any flow estimate;
(b) **real**: a clip from a package (default: ViSP's ``video/cube.mpeg``, a real camera moving
    around a cube, Debian ``visp-images-data``), where the motion comes from DIS optical flow on
    the input frames (the same for both methods).

For each clip and method it prints E_warp, the median Gram style ratio of the frames (with
--encoder and --style; as in bench_quality) and frames per second (flow included).

    python bench/bench_video.py --model elephants-fast --encoder .eval/vgg16_eval.safetensors \\
        --style /usr/share/backgrounds/mate/abstract/Elephants.jpg --size 960x540
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ganstyle.core.quality import gram_style_ratio

ROOT = Path(__file__).resolve().parents[1]
REAL_CLIP = "/usr/share/visp-images-data/ViSP-images/video/cube.mpeg"


def camera_clip(photo: torch.Tensor, sprite: torch.Tensor, frames: int, size: tuple[int, int]):
    """A synthetic clip: ``frames`` views (1, 3, H, W) of ``photo`` by a camera that pans, zooms and
    rotates, with ``sprite`` sliding across. Returns (frames, flows, valid): flows[t] (H, W, 2) is
    the exact motion from frame t to frame t-1 (flows[0] unused), valid[t] (H, W) is 1 where the
    pixel of frame t was visible in frame t-1."""
    h, w = size
    ph, pw = photo.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")

    def pose(t):     # the camera at frame t: rotation, zoom and where the frame centre looks
        return math.radians(0.15 * t), 1.0 / (1.0 + 0.004 * t), pw / 2 + 2.5 * t, ph / 2 + 0.8 * t

    def camera(t):   # frame pixel → photo pixel: rotate, scale, translate about the frame centre
        angle, scale, cx, cy = pose(t)
        u, v = (xs - w / 2) * scale, (ys - h / 2) * scale
        return cx + u * math.cos(angle) - v * math.sin(angle), cy + u * math.sin(angle) + v * math.cos(angle)

    def to_frame(t, qx, qy):   # photo pixel → frame pixel (inverse of camera(t))
        angle, scale, cx, cy = pose(t)
        dx, dy = qx - cx, qy - cy
        u = (dx * math.cos(angle) + dy * math.sin(angle)) / scale
        v = (-dx * math.sin(angle) + dy * math.cos(angle)) / scale
        return u + w / 2, v + h / 2

    sh, sw = sprite.shape[-2:]

    def sprite_box(t):
        x0, y0 = int(w * 0.1 + 6 * t), int(h * 0.35 - 1 * t)
        return x0, y0, x0 + sw, y0 + sh

    def inside(box, x, y):
        return (x >= box[0]) & (x < box[2]) & (y >= box[1]) & (y < box[3])

    frames_out, flows, valid = [], [], []
    for t in range(frames):
        qx, qy = camera(t)
        grid = torch.stack([(qx + 0.5) / pw * 2 - 1, (qy + 0.5) / ph * 2 - 1], -1)[None]
        frame = F.grid_sample(photo, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        box = sprite_box(t)
        x0, y0, x1, y1 = box
        frame[..., max(0, y0):min(h, y1), max(0, x0):min(w, x1)] = \
            sprite[..., max(0, -y0):sh - max(0, y1 - h), max(0, -x0):sw - max(0, x1 - w)]
        frames_out.append(frame.clamp(0, 1))
        if t == 0:
            flows.append(torch.zeros(h, w, 2))
            valid.append(torch.zeros(h, w))
            continue
        px, py = to_frame(t - 1, qx, qy)                      # background: where it was at t-1
        on_sprite = inside(box, xs, ys)
        prev_box = sprite_box(t - 1)
        sx, sy = xs + (prev_box[0] - box[0]), ys + (prev_box[1] - box[1])
        fx = torch.where(on_sprite, sx, px) - xs
        fy = torch.where(on_sprite, sy, py) - ys
        was_hidden = ~on_sprite & inside(prev_box, px, py)    # background behind the sprite at t-1
        in_frame = (xs + fx >= 0) & (xs + fx <= w - 1) & (ys + fy >= 0) & (ys + fy <= h - 1)
        flows.append(torch.stack([fx, fy], -1))
        valid.append((in_frame & ~was_hidden).float())
    return frames_out, flows, valid


def e_warp(results: list[torch.Tensor], flows, valid) -> float:
    from ganstyle.core.flow import warp_by_flow

    errors = []
    for t in range(1, len(results)):
        moved = warp_by_flow(results[t - 1], flows[t])
        diff = (results[t] - moved).pow(2).mean(1)[0]
        errors.append(float((diff * valid[t]).sum() / valid[t].sum().clamp(min=1)))
    return statistics.mean(errors)


def real_clip(path: str, size: tuple[int, int] | None, limit: int):
    """Frames of a video file, optionally resized; flows and validity from DIS on the input."""
    import itertools

    from ganstyle.core.flow import FlowEstimator, occlusion_mask
    from ganstyle.core.video_io import read_frames

    frames = list(itertools.islice(read_frames(path)[0], limit))
    if size is not None:
        frames = [F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True) for x in frames]
    est = FlowEstimator("medium")
    flows, valid = [torch.zeros(*frames[0].shape[-2:], 2)], [torch.zeros(frames[0].shape[-2:])]
    for t in range(1, len(frames)):
        back, fwd = est(frames[t], frames[t - 1]), est(frames[t - 1], frames[t])
        flows.append(torch.as_tensor(back))
        valid.append(1 - occlusion_mask(back, fwd))
    return frames, flows, valid


def bench_optimize(args) -> int:
    """Optimize Stylize on the synthetic clip: each frame on its own vs the video mode."""
    from ganstyle.core.features import compute_style_features, resize_long_side
    from ganstyle.core.images import load_image
    from ganstyle.core.optimize import OptimizeOptions, optimize_stylize, optimize_video
    from ganstyle.core.vgg import load_vgg_encoder

    if not (args.encoder and args.style):
        raise SystemExit("--optimize needs --encoder and --style")
    w, h = (int(v) for v in args.optimize_size.lower().split("x"))
    photo = resize_long_side(load_image(args.photo), int(1.6 * max(w, h)))
    sprite = resize_long_side(load_image(args.sprite), w // 3)
    frames, flows, valid = camera_clip(photo, sprite, args.optimize_frames, (h, w))
    encoder = load_vgg_encoder(args.encoder, device=args.device)
    style = compute_style_features(encoder, load_image(args.style), style_size=512)
    # the same steps per frame for both: a single scale at the clip's size, starting from the content
    options = OptimizeOptions(steps=args.steps, long_side=0, start_side=max(w, h), preview_every=0)
    runs = {}
    start = time.perf_counter()
    runs["per frame"] = [optimize_stylize(encoder, f, style, options) for f in frames]
    seconds = {"per frame": time.perf_counter() - start}
    start = time.perf_counter()
    runs[f"video mode (weight {args.temporal_weight:g})"] = list(
        optimize_video(encoder, frames, style, options, temporal_weight=args.temporal_weight))
    seconds[list(runs)[1]] = time.perf_counter() - start
    print(f"{'Optimize Stylize, synthetic ' + args.optimize_size:<40} {'E_warp':>9} {'vs per frame':>12} "
          f"{'style':>7} {'s/frame':>8}")
    baseline = None
    for name, results in runs.items():
        err = e_warp(results, flows, valid)
        baseline = baseline or err
        ratio = statistics.median(float(gram_style_ratio(encoder, f, r, style)[0]) for f, r in zip(frames, results))
        print(f"{name:<40} {err:>9.5f} {err / baseline:>11.2f}x {ratio:>7.3f} {seconds[name] / len(frames):>8.1f}")
    print(goal_line("video mode E_warp <= 1/3 of per frame (same steps)", err / baseline <= 1 / 3,
                    f"{err / baseline:.2f}x"))
    return 0


def goal_line(goal: str, met: bool, measured: str) -> str:
    return f"goal: {goal}: {'PASS' if met else 'FAIL'} ({measured})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="elephants-fast")
    p.add_argument("--photo", default=str(ROOT / "runs" / "photos" / "holdout" / "lomiri-wallpapers-16.04" /
                                          "sunset_by_Aitzol_Berasategi.jpg"),
                   help="the synthetic clip's background photo (never trained on)")
    p.add_argument("--sprite", default=str(ROOT / "weights" / "samples" / "photo.jpg"),
                   help="the photo the sliding foreground layer is cut from")
    p.add_argument("--size", default="960x540", help="synthetic clip size WxH (default 960x540)")
    p.add_argument("--frames", type=int, default=24, help="synthetic clip length (default 24)")
    p.add_argument("--real", default=REAL_CLIP, help="a real video clip ('' skips)")
    p.add_argument("--real-frames", type=int, default=40)
    p.add_argument("--temporal", type=float, default=0.5, help="the temporal setting measured (default 0.5)")
    p.add_argument("--flow-preset", default="fast", help="DIS preset of the temporal GAN mode (default fast, "
                                                          "as VideoOptions)")
    p.add_argument("--encoder", default=None, help="VGG for the style ratio (default: skip it)")
    p.add_argument("--style", default=None, help="the model's style image, for the style ratio")
    p.add_argument("--device", default="cpu")
    p.add_argument("--optimize", action="store_true",
                   help="measure Optimize Stylize instead: per frame vs video mode (optimize_video), same steps")
    p.add_argument("--optimize-size", default="256x160", help="clip size for --optimize (default 256x160)")
    p.add_argument("--optimize-frames", type=int, default=8)
    p.add_argument("--steps", type=int, default=60, help="evaluations per frame for --optimize (default 60)")
    p.add_argument("--temporal-weight", type=float, default=500.0, help="optimize_video temporal weight")
    p.add_argument("--write-clip", metavar="VIDEO", default=None,
                   help="only write the synthetic clip (input frames) to this video file and stop (how the "
                        "pack's sample clip weights/samples/clip.mp4 was made, with --photo "
                        "weights/samples/photo.jpg --size 320x200 --frames 48)")
    args = p.parse_args(argv)

    from ganstyle.core.features import compute_style_features, resize_long_side
    from ganstyle.core.images import load_image
    from ganstyle.core.models import load_style_model
    from ganstyle.core.video import VideoOptions, VideoStylizer

    if args.optimize:
        return bench_optimize(args)
    model = load_style_model(args.model, device=args.device)
    w, h = (int(v) for v in args.size.lower().split("x"))
    photo = resize_long_side(load_image(args.photo), int(1.6 * max(w, h)))
    sprite = resize_long_side(load_image(args.sprite), w // 3)
    clips = {"synthetic (known motion)": camera_clip(photo, sprite, args.frames, (h, w))}
    if args.write_clip:
        from ganstyle.core.video_io import FrameWriter
        with FrameWriter(args.write_clip, fps=24) as writer:
            for frame in clips["synthetic (known motion)"][0]:
                writer.write(frame)
        print(f"wrote {writer.count} frames to {args.write_clip}")
        return 0
    if args.real:
        clips[f"real ({Path(args.real).name}, DIS flow)"] = real_clip(args.real, None, args.real_frames)
    encoder = style = None
    if args.encoder and args.style:
        from ganstyle.core.vgg import load_vgg_encoder
        encoder = load_vgg_encoder(args.encoder, device=args.device)
        style = compute_style_features(encoder, load_image(args.style), style_size=1024)
    from ganstyle.core.models import takes_style_features

    condition = None   # an any-style model is given the painting (--style) as Style Features
    if takes_style_features(model):
        if not args.style or encoder is None:
            raise SystemExit(f"{model.name} takes any painting: give --style PAINTING and --encoder")
        condition = style
    methods = {"per frame": VideoOptions(temporal=0.0, statistics="frame"),
               "clip statistics": VideoOptions(temporal=0.0, statistics="clip"),
               f"temporal {args.temporal}": VideoOptions(temporal=args.temporal, statistics="clip",
                                                         flow_preset=args.flow_preset)}
    print(f"# model {model.name}; threads {torch.get_num_threads()}", file=sys.stderr)
    print(f"{'clip':<34} {'method':<18} {'E_warp':>9} {'vs per frame':>12} {'style':>7} {'fps':>6}")
    goals = []
    for clip_name, (frames, flows, valid) in clips.items():
        baseline = base_ratio = None
        for method, options in methods.items():
            stylizer = VideoStylizer(model, options, style=condition, device=args.device)
            start = time.perf_counter()
            results = [stylizer(f) for f in frames]
            fps = len(frames) / (time.perf_counter() - start)
            stylizer.close()
            err = e_warp(results, flows, valid)
            baseline = baseline or err
            ratio = "-"
            if encoder is not None:   # on about six frames spread over the clip
                every = max(1, len(results) // 6)
                ratios = [float(gram_style_ratio(encoder, f, r, style)[0])
                          for f, r in zip(frames[::every], results[::every])]
                ratio = f"{statistics.median(ratios):.3f}"
                base_ratio = base_ratio or statistics.median(ratios)
            print(f"{clip_name[:34]:<34} {method:<18} {err:>9.5f} {err / baseline:>11.2f}x {ratio:>7} {fps:>6.2f}")
        if clip_name.startswith("synthetic"):   # the goals are set on the clip whose motion is known
            goals.append(goal_line(f"temporal E_warp <= 1/3 of per frame ({clip_name})", err / baseline <= 1 / 3,
                                   f"{err / baseline:.2f}x"))
            if encoder is not None:
                change = statistics.median(ratios) / base_ratio - 1
                goals.append(goal_line("temporal style ratio within 10 % of per frame", abs(change) <= 0.10,
                                       f"{change:+.1%}"))
            if (w, h) == (960, 540):
                goals.append(goal_line("temporal at 960x540 >= 4 frames/s, flow included", fps >= 4, f"{fps:.1f}"))
    print("\n".join(goals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
