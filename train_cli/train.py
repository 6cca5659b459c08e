"""``ganstyle train``: train a feed-forward style model (see :mod:`ganstyle.core.trainer`).

    ganstyle train --content photos/ --style painting.jpg --out runs/painting
    ganstyle train --out runs/painting --resume --steps 4000          # continue, train longer
    torchrun --nproc_per_node 4 -m ganstyle.train_cli train ...      # DistributedDataParallel

The flags are made from :class:`~ganstyle.core.training.config.TrainConfig`'s fields (names,
types, defaults, choices, help); with ``--resume`` the run's saved ``options.json`` is the
starting point and only the flags given change it.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path

from .options import add_config_arguments, field_doc, options_from_args

# How the flags are presented; what they are comes from TrainConfig.
GROUPS = {
    "data": ("content", "style", "styles", "out", "image_size", "content_size", "crop_scale_min", "color_jitter",
             "style_size", "style_target_images", "content_scale"),
    "optimisation": ("steps", "max_minutes", "batch_size", "lr_g", "lr_d", "beta1_g", "beta1_d", "lambda_content",
                     "lambda_style",
                     "lambda_tone", "tone_pool", "lambda_adv", "lambda_tv", "lambda_pixel", "lambda_warp", "warp_noise",
                     "style_layer_weights",
                     "warmup_steps", "adv_mode", "ema_decay", "seed"),
    "models": ("preset", "init_from", "base", "d_channels", "d_layers", "d_scales", "spectral_norm", "encoder"),
    "run": ("device", "mixed_precision", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints",
            "num_previews", "export_fp16", "progress"),
}
FLAGS = {"batch_size": ("--batch-size", "--batch"), "num_previews": ("--previews",)}
METAVARS = {"content": "PATH", "style": "PATH", "styles": "[NAME=]PATH", "out": "RUN_DIR", "image_size": "PX",
            "max_minutes": "MIN", "style_size": "PX", "content_size": "PX", "init_from": "MODEL", "crop_scale_min": "S",
            "color_jitter": "J", "tone_pool": "PX",
            "style_target_images": "N", "content_scale": "X", "style_layer_weights": "W", "encoder": "REF",
            "batch_size": "N", "num_previews": "N"}


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..core.training.config import TrainConfig

    p = subparsers.add_parser(
        "train", help="train a feed-forward style model (GAN + perceptual losses)",
        description="Train a feed-forward generator that stylises a photo in one forward pass: content + "
                    "Gram style + tone + total-variation + PatchGAN adversarial losses (fine-tune from the "
                    "shipped base with --init-from base-fast). Writes options, a loss "
                    "log, sample grids and checkpoints to --out, and exports the EMA generator to "
                    "OUT/model. Works unchanged under torchrun (DistributedDataParallel).")
    groups = add_config_arguments(p, TrainConfig, groups=GROUPS, exclude=("generator", "style_info"), flags=FLAGS,
                                  metavars=METAVARS, required=("out",))
    groups["data"].add_argument("--style-info", metavar="FILE",
                                help=f"{field_doc(TrainConfig, 'style_info')}, read from this JSON file")
    groups["models"].add_argument("--generator", action="extend", nargs="+", metavar="FIELD=VALUE",
                                  help=f"{field_doc(TrainConfig, 'generator')}, e.g. --generator num_residual_blocks=3 "
                                       f"base_channels=24")
    groups["run"].add_argument("--resume", action="store_true",
                               help="continue the run in --out exactly from its newest checkpoint; options "
                                    "not given are taken from its options.json")
    p.set_defaults(func=main)
    return p


def given_options(args: argparse.Namespace) -> dict:
    """The TrainConfig fields that were given on the command line."""
    from ..core.errors import InputError
    from ..core.training.config import TrainConfig

    given = options_from_args(args, TrainConfig)
    given.pop("generator", None)
    given.pop("style_info", None)
    if getattr(args, "style_info", None):
        path = Path(args.style_info).expanduser()
        try:
            given["style_info"] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"--style-info {path}: cannot read it as JSON ({e})") from None
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
    from ..core.errors import InputError
    from ..core.training.config import TrainConfig, load_options

    given = given_options(args)
    saved = Path(args.out).expanduser() / "options.json"
    if args.resume:
        if not saved.exists():
            raise InputError(f"no run to resume in {args.out} (no {saved.name}); start one with --content and "
                             f"--style (without --resume)")
        previous = load_options(saved)
        base = config_to_dict(previous)
        base.update(given)
        config = config_from_dict(TrainConfig, base, source="command line")
        check_resumable(previous, config, args.out)
        return config
    config = TrainConfig(**given)
    required = [("--content", "content")] + ([("--style", "style")] if config.needs_style else [])
    missing = [flag for flag, field in required if field not in given and not (field == "style" and "styles" in given)]
    if missing:
        raise InputError(f"{' and '.join(missing)} required to start a new run in {args.out}")
    return config


def flag_of(field: str) -> str:
    """The command-line flag of a TrainConfig field (``num_previews`` → ``--previews``)."""
    return FLAGS.get(field, (f"--{field.replace('_', '-')}",))[0]


def check_resumable(saved, config, run_dir) -> None:
    """Refuse, naming the flags, options that a resumed run cannot change (they change the maths)."""
    import dataclasses

    from ..core.errors import InputError
    from ..core.training.config import RESUMABLE_CHANGES

    changed = [f.name for f in dataclasses.fields(config)
               if f.name not in RESUMABLE_CHANGES and getattr(saved, f.name) != getattr(config, f.name)]
    if changed:
        details = ", ".join(f"{flag_of(n)} {_shown(getattr(config, n))} (the run has {_shown(getattr(saved, n))})"
                            for n in changed)
        allowed = ", ".join(flag_of(n) for n in sorted(RESUMABLE_CHANGES))
        raise InputError(f"cannot resume {run_dir} with {details}: only {allowed} may change when resuming; "
                         f"start a new run in another --out folder to change the others")


def _shown(value) -> str:
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value))
    if isinstance(value, dict):
        return " ".join(f"{k}={json.dumps(v)}" for k, v in value.items()) or "(none)"
    return str(value)


class _ProgressBarHandler(logging.Handler):
    """Log records as ``[ganstyle] message`` lines on stderr, above the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm
        tqdm.write(f"[ganstyle] {record.getMessage()}", file=sys.stderr)


@contextlib.contextmanager
def _show_progress_messages():
    """Show the trainer's INFO messages (resume, stop, export) while the command runs."""
    package = logging.getLogger(__name__.split(".")[0])
    handler, level = _ProgressBarHandler(logging.INFO), package.level
    package.addHandler(handler)
    package.setLevel(min(level or logging.INFO, logging.INFO))
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(level)


def main(args: argparse.Namespace) -> int:
    import warnings

    from ..core.data import SkippedFilesWarning
    from ..core.trainer import Trainer

    with _show_progress_messages():
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
