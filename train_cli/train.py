"""``ganstyle train``: train a feed-forward style model (see :mod:`ganstyle.core.trainer`).

    ganstyle train --content photos/ --style painting.jpg --out runs/painting
    ganstyle train --out runs/painting --resume --steps 4000          # continue, train longer
    torchrun --nproc_per_node 4 -m ganstyle.train_cli train ...      # DistributedDataParallel

Every flag defaults to the :class:`~ganstyle.core.trainer.TrainConfig` default; with ``--resume``
the run's saved ``options.json`` is the starting point and only the flags given change it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

# flag dest → TrainConfig field (same name unless listed)
_FIELD_OF = {"batch": "batch_size", "previews": "num_previews"}


def _defaults() -> dict:
    from ..core.trainer import TrainConfig
    return {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
            for f in dataclasses.fields(TrainConfig)}


def add_parser(subparsers) -> argparse.ArgumentParser:
    d = _defaults()
    p = subparsers.add_parser(
        "train", help="train a feed-forward style model (GAN + perceptual losses)",
        description="Train a feed-forward generator that stylises a photo in one forward pass: content + "
                    "Gram style + total-variation + PatchGAN adversarial losses. Writes options, a loss "
                    "log, sample grids and checkpoints to --out, and exports the EMA generator to "
                    "OUT/model. Works unchanged under torchrun (DistributedDataParallel).")
    data = p.add_argument_group("data")
    data.add_argument("--content", nargs="+", metavar="PATH",
                      help="folder(s) of content photos (searched recursively) and/or image files; "
                           "unreadable files are skipped with one warning")
    data.add_argument("--style", nargs="+", metavar="PATH",
                      help="style source: one image, several images, or folder(s) of a domain (an artist's "
                           "works, illustrations, frames). The style target is their averaged Gram matrix "
                           "and the discriminator's real samples are crops of them")
    data.add_argument("--out", required=True, metavar="RUN_DIR",
                      help="run folder: options.json, losses.csv, samples/, checkpoints/, model/")
    data.add_argument("--image-size", type=int, metavar="PX", help=f"training crop size (default {d['image_size']})")
    data.add_argument("--style-size", type=int, metavar="PX",
                      help=f"long side the style images are scaled to; larger = finer strokes (default {d['style_size']})")
    data.add_argument("--style-target-images", type=int, metavar="N",
                      help="at most N style images (evenly spaced) make the averaged Gram target, to bound "
                           f"start-up time for big domain folders; all are used by the discriminator "
                           f"(default {d['style_target_images']})")
    data.add_argument("--content-scale", type=float, metavar="X",
                      help=f"photos are cached with short side = X × image size, then cropped (default {d['content_scale']})")

    train = p.add_argument_group("optimisation")
    train.add_argument("--steps", type=int, help=f"total training steps (default {d['steps']})")
    train.add_argument("--batch-size", "--batch", dest="batch", type=int,
                       help=f"images per step per process (default {d['batch_size']})")
    train.add_argument("--lr-g", type=float, help=f"generator learning rate (default {d['lr_g']})")
    train.add_argument("--lr-d", type=float, help=f"discriminator learning rate (default {d['lr_d']})")
    train.add_argument("--lambda-content", type=float, help=f"content loss weight (default {d['lambda_content']})")
    train.add_argument("--lambda-style", type=float, help=f"style loss weight (default {d['lambda_style']})")
    train.add_argument("--lambda-adv", type=float,
                       help=f"adversarial loss weight; 0 trains without a discriminator (default {d['lambda_adv']})")
    train.add_argument("--lambda-tv", type=float, help=f"total-variation weight (default {d['lambda_tv']})")
    train.add_argument("--style-layer-weights", type=float, nargs=5, metavar="W",
                       help="relative weights of relu1_1 relu2_1 relu3_1 relu4_1 relu5_1 "
                            f"(default {' '.join(map(str, d['style_layer_weights']))})")
    train.add_argument("--warmup-steps", type=int,
                       help=f"content/style-only steps before the adversarial term (default {d['warmup_steps']})")
    train.add_argument("--adv-mode", choices=("lsgan", "hinge", "nsgan"), help=f"GAN loss (default {d['adv_mode']})")
    train.add_argument("--ema-decay", type=float, help=f"EMA decay of the exported weights (default {d['ema_decay']})")
    train.add_argument("--seed", type=int, help=f"seed of initialisation and data order (default {d['seed']})")

    model = p.add_argument_group("models")
    model.add_argument("--preset", choices=("johnson", "fast"),
                       help=f"generator architecture: 'johnson' (Johnson et al. 2016) or 'fast' (default {d['preset']})")
    model.add_argument("--generator", action="extend", nargs="+", metavar="FIELD=VALUE",
                       help="override generator config fields of the preset, e.g. --generator num_residual_blocks=3 base_channels=24")
    model.add_argument("--d-channels", type=int, help=f"discriminator base channels (default {d['d_channels']})")
    model.add_argument("--d-layers", type=int, help=f"discriminator stride-2 layers, 3 = 70 px patches (default {d['d_layers']})")
    model.add_argument("--d-scales", type=int, help=f"discriminator scales, >1 = multi-scale PatchGAN (default {d['d_scales']})")
    model.add_argument("--spectral-norm", action=argparse.BooleanOptionalAction, default=None,
                       help="spectral normalisation in the discriminator (default on)")
    model.add_argument("--encoder", metavar="REF",
                       help=f"loss encoder: registry name (vgg16, vgg19), local .safetensors file, or Hub repo "
                            f"(default {d['encoder']})")

    run = p.add_argument_group("run")
    run.add_argument("--device", help=f"'auto', 'cpu', 'cuda', 'cuda:1' … (default {d['device']})")
    run.add_argument("--mixed-precision", choices=("auto", "bf16", "fp32"),
                     help="'auto' = bf16 autocast on CUDA and fp32 elsewhere; 'bf16' also on CPUs with "
                          f"bf16 support (default {d['mixed_precision']})")
    run.add_argument("--log-every", type=int, help=f"steps between loss-log rows (default {d['log_every']})")
    run.add_argument("--sample-every", type=int, help=f"steps between sample grids, 0 = never (default {d['sample_every']})")
    run.add_argument("--checkpoint-every", type=int,
                     help=f"steps between checkpoints, 0 = only at the end (default {d['checkpoint_every']})")
    run.add_argument("--keep-checkpoints", type=int, help=f"newest checkpoints to keep (default {d['keep_checkpoints']})")
    run.add_argument("--previews", type=int, help=f"content images in sample grids (default {d['num_previews']})")
    run.add_argument("--export-fp16", action=argparse.BooleanOptionalAction, default=None,
                     help="export the generator in fp16 (half the file size; default off)")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="show a progress bar (default on)")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in --out exactly from its newest checkpoint; options not given "
                          "are taken from its options.json")
    p.set_defaults(func=main)
    return p


def options_from_args(args: argparse.Namespace) -> dict:
    """The TrainConfig fields that were given on the command line."""
    from ..core.errors import InputError
    from ..core.trainer import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {}
    for dest, value in vars(args).items():
        field = _FIELD_OF.get(dest, dest.replace("-", "_"))
        if field in names and value is not None and field != "generator":
            given[field] = tuple(value) if isinstance(value, list) else value
    if args.generator:
        overrides = {}
        for item in args.generator:
            key, sep, raw = item.partition("=")
            if not sep or not key.strip():
                raise InputError(f"--generator expects FIELD=VALUE, got '{item}'")
            try:
                overrides[key.strip()] = json.loads(raw)
            except json.JSONDecodeError:
                overrides[key.strip()] = raw  # a bare string such as nearest
        given["generator"] = overrides
    return given


def build_config(args: argparse.Namespace):
    from ..core.config import config_from_dict, config_to_dict
    from ..core.errors import ConfigError, InputError
    from ..core.trainer import TrainConfig

    given = options_from_args(args)
    saved = Path(args.out).expanduser() / "options.json"
    if args.resume and saved.exists():
        try:
            base = config_to_dict(config_from_dict(TrainConfig, json.loads(saved.read_text()), source=str(saved)))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{saved}: not valid JSON ({e}); cannot resume") from None
        base.update(given)
        return config_from_dict(TrainConfig, base, source="command line")
    missing = [flag for flag, field in (("--content", "content"), ("--style", "style")) if field not in given]
    if missing:
        raise InputError(f"{' and '.join(missing)} required to start a new run in {args.out}")
    return TrainConfig(**given)


def main(args: argparse.Namespace) -> int:
    import warnings

    from ..core.data import SkippedFilesWarning
    from ..core.trainer import Trainer

    with warnings.catch_warnings():
        default_show = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, SkippedFilesWarning):  # a user-facing note, not a code location
                print(f"ganstyle train: warning: {message}", file=sys.stderr)
            else:
                default_show(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        trainer = Trainer(build_config(args), resume=args.resume)
    model_dir = trainer.train()
    if model_dir is not None:
        print(model_dir)
    return 0
