"""``ganstyle train-decoder``: train the any-painting encoder–decoder (:mod:`ganstyle.core.training.decoder`).

    ganstyle train-decoder --content runs/photos/train --paintings styles/train --out runs/decoder
    ganstyle train-decoder --out runs/decoder --resume --max-minutes 60       # continue in the background
    ganstyle train-decoder --stage style --init-from runs/decoder/model --content … --paintings … --out runs/dec2

The flags are made from :class:`~ganstyle.core.training.decoder.DecoderTrainConfig`'s fields; with
``--resume`` the run's ``options.json`` is the starting point and only the flags given change it.
"""
from __future__ import annotations

import argparse

from .options import add_config_arguments, options_from_args


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..core.training.decoder import DecoderTrainConfig

    p = subparsers.add_parser(
        "train-decoder", help="train the any-painting encoder–decoder (VGG encoder, fusion, decoders)",
        description="Train the decoders of the encoder–decoder model: stage reconstruct (invert VGG layers on "
                    "photos and paintings), then optionally stage style (content + Gram style + adversarial + TV). "
                    "Writes options, a loss log, samples and checkpoints to --out and exports OUT/model.")
    add_config_arguments(p, DecoderTrainConfig, required=(), variadic=("levels", "train_levels"),
                         metavars={"content": "PATH", "paintings": "PATH", "out": "RUN_DIR", "max_minutes": "MIN"})
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out exactly from its newest checkpoint")
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    from ..core.errors import InputError
    from ..core.training.decoder import DecoderTrainConfig, DecoderTrainer, run_options

    given = options_from_args(args, DecoderTrainConfig)
    if not given.get("out"):
        raise InputError("--out RUN_DIR is required")
    config = run_options(given, resume=args.resume)
    trainer = DecoderTrainer(config, resume=args.resume)
    model = trainer.train()
    print(f"model: {model} (step {trainer.step})")
    return 0
