"""Gallery and quality figures of the shipped default style model on held-out photos.

For each photo (never seen in training) it stylises with the model and reports, measured with
the evaluation encoder (a VGG16 stand-in for ImageNet weights, see ../shared/tools):

- style loss (Gram, relu1_1…relu5_1, against the painting) of the input photo and of the result:
  how far the result moved toward the painting;
- content loss (relu4_2) of the result against the photo: how readable the scene stays;
- seconds per image (one forward pass, after a warm-up).

It writes a gallery PNG (photo | result, one row per photo).

    python bench/bench_gallery.py --encoder .eval/vgg16_eval.safetensors \
        --photos /usr/share/backgrounds/mate/nature/{Aqua,Dune,Garden,LadyBird,Storm}.jpg \
        --style /usr/share/backgrounds/mate/abstract/Elephants.jpg --out docs/gallery.jpg
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from ganstyle.core.features import compute_style_features, resize_long_side
from ganstyle.core.images import image_grid, load_image, save_image
from ganstyle.core.losses import content_loss, gram_style_loss
from ganstyle.core.models import default_style_model, load_style_model
from ganstyle.core.stylize import stylize
from ganstyle.core.vgg import CONTENT_LAYER, STYLE_LAYERS, load_vgg_encoder_file

ROOT = Path(__file__).resolve().parent.parent
HELD_OUT = ["Aqua", "Dune", "Garden", "LadyBird", "Storm"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="style model reference (default: the registry's default)")
    p.add_argument("--encoder", default=str(ROOT / ".eval" / "vgg16_eval.safetensors"), help="evaluation VGG file")
    p.add_argument("--photos", nargs="+", default=[f"/usr/share/backgrounds/mate/nature/{n}.jpg" for n in HELD_OUT],
                   help="held-out photos (default: the 5 mate-backgrounds photos kept out of training)")
    p.add_argument("--style", default="/usr/share/backgrounds/mate/abstract/Elephants.jpg", help="the painting")
    p.add_argument("--style-size", type=int, default=512, help="long side the painting is measured at (as in training)")
    p.add_argument("--size", type=int, default=1024, help="long side the photos are stylised at")
    p.add_argument("--measure-size", type=int, default=512, help="long side the losses are measured at")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", default=str(ROOT / "bench" / "out" / "gallery.jpg"), help="gallery image path")
    args = p.parse_args(argv)

    torch.manual_seed(0)
    device = torch.device(args.device)
    encoder = load_vgg_encoder_file(args.encoder, device=device)
    style = compute_style_features(encoder, load_image(args.style), style_size=args.style_size)
    model = load_style_model(args.model or default_style_model(), device=device)
    print(f"# model {model.name} ({model.source}); encoder {encoder.identity}; device {device}; "
          f"threads {torch.get_num_threads()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'photo':<14}{'size':>11}{'style(in)':>11}{'style(out)':>11}{'ratio':>7}{'content':>9}{'s/img':>7}")
    rows, totals = [], {"in": 0.0, "out": 0.0, "content": 0.0, "sec": 0.0}
    for path in args.photos:
        photo = resize_long_side(load_image(path), args.size).to(device)
        stylize(model, photo[..., :64, :64])  # warm-up (allocator, kernels)
        start = time.perf_counter()
        result = stylize(model, photo)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            small_in = resize_long_side(photo, args.measure_size)
            small_out = resize_long_side(result, args.measure_size)
            f_in = encoder(small_in, (CONTENT_LAYER, *STYLE_LAYERS))
            f_out = encoder(small_out, (CONTENT_LAYER, *STYLE_LAYERS))
            s_in = float(gram_style_loss(f_in, style.grams))
            s_out = float(gram_style_loss(f_out, style.grams))
            c = float(content_loss(f_out[CONTENT_LAYER], f_in[CONTENT_LAYER]))
        h, w = photo.shape[-2:]
        print(f"{Path(path).stem:<14}{f'{w}x{h}':>11}{s_in:>11.4f}{s_out:>11.4f}{s_out / s_in:>7.2f}{c:>9.3f}"
              f"{seconds:>7.2f}")
        for k, v in (("in", s_in), ("out", s_out), ("content", c), ("sec", seconds)):
            totals[k] += v
        rows.append([photo.cpu(), result.cpu()])
    n = len(args.photos)
    print(f"{'mean':<14}{'':>11}{totals['in'] / n:>11.4f}{totals['out'] / n:>11.4f}"
          f"{totals['out'] / totals['in']:>7.2f}{totals['content'] / n:>9.3f}{totals['sec'] / n:>7.2f}")
    out = save_image(image_grid(rows, height=300), args.out)
    print(f"gallery: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
