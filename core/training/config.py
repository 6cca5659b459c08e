"""Every training option, declared once: :class:`TrainConfig`.

Its fields (type, default, bounds or choices, ``doc``) are what ``options.json`` holds, what
:func:`~ganstyle.core.config.config_from_dict` validates, and what ``ganstyle train``'s flags are
made from (:mod:`ganstyle.train_cli.options`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..config import bounded, check_fields, config_from_dict, config_to_dict
from ..device import MIXED_PRECISION_MODES
from ..discriminator import DiscriminatorConfig
from ..errors import ConfigError
from ..generator import PRESETS, GeneratorConfig, preset_config
from ..losses import ADV_MODES
from ..vgg import STYLE_LAYERS

# Options that may differ when resuming (they do not change the maths of a training step).
RESUMABLE_CHANGES = frozenset({"steps", "max_minutes", "log_every", "sample_every", "checkpoint_every",
                               "keep_checkpoints", "num_previews", "export_fp16", "progress", "device"})


# Defaults for a new style on a library (--base), where only the style's norm scales and shifts
# train. At the general defaults (lr 1e-3, style weight 1) a 15-minute CPU run (about 200 steps)
# leaves the style half learnt (Gram ratio 0.066 on held-out photos at lr 1e-3); at lr 5e-3 and
# style weight 4 the same run reaches 0.034 (docs/benchmarks.md). Options given explicitly win.
NEW_STYLE_DEFAULTS = {"lr_g": 5e-3, "lambda_style": 4.0}


class _Unset(float):
    """A field's general default, told apart from the same number given by the caller, so that
    ``TrainConfig(base=...)`` can take :data:`NEW_STYLE_DEFAULTS` for the fields left unset. It
    is a plain float everywhere else (saved as one in ``options.json``, so a resumed run reads
    back exactly the values it started with)."""


@dataclass(kw_only=True)
class TrainConfig:
    """Every training option; saved as ``options.json`` in the run folder.

    Content and style are *relative* errors, so the loss weights do not depend on the encoder's
    activation scale (how the defaults were calibrated: ``docs/benchmarks.md``)."""
    content: tuple[str, ...] = bounded((), doc="folder(s) of content photos (searched recursively) and/or image "
                                               "files; unreadable files are skipped with one warning")
    style: tuple[str, ...] = bounded((), doc="style source: one image, several images, or folder(s) of a domain "
                                             "(an artist's works, illustrations, frames). The style target is "
                                             "their averaged Gram matrix and the discriminator's real samples "
                                             "are crops of them")
    styles: tuple[str, ...] = bounded((), legacy=(),
                                      doc="train a style library instead: one style per entry, NAME=PATH or PATH "
                                          "(named after the file or folder; a folder is a domain). The styles "
                                          "share the generator's convolutions and each gets its own norm "
                                          "parameters; the discriminator is conditioned on the style")
    arbitrary: bool = bounded(False, legacy=False,
                              doc="train an arbitrary-style generator (any style image in one pass): --styles names "
                                  "folders whose every subfolder (or image) is one training style; a predictor "
                                  "maps each style's VGG statistics to the norm parameters (Ghiasi et al. 2017). "
                                  "Keep some styles out of training to judge it (bench/bench_quality.py)")
    style_embedding: int = bounded(64, 1, 1024, legacy=64,
                                   doc="with --arbitrary: size of the style embedding the predictor outputs")
    freeze_convolutions: bool = bounded(False, legacy=False,
                                        doc="train only the normalisation scales and shifts (and an arbitrary-style "
                                            "model's predictor) of the --init-from generator, its convolutions "
                                            "frozen: many styles then cannot pull the shared convolutions apart")
    base: str = bounded("", legacy="",
                        doc="add a style to this style library (registry name, folder or Hub repo): only the new "
                            "style's norm parameters train, the library's convolutions stay frozen, so it converges "
                            "in minutes (use --lr-g 0.005: a few thousand norm parameters take larger steps); exports "
                            "model/ (the style as a model of its own) and style/ (a style file of a few KB that "
                            "--styles-from adds to the library)")
    style_info: dict = field(default_factory=dict,
                             metadata={"doc": "what the model records about each style of a library (--styles) or "
                                              "about the new style (--base): {NAME: {source, licence, author}}",
                                       "legacy": {}})
    out: str = bounded("", doc="run folder: options.json, losses.csv, samples/, checkpoints/, model/")
    preset: str = bounded("fast", choices=tuple(PRESETS),
                          doc="generator architecture: 'johnson' (Johnson et al. 2016) or 'fast'")
    generator: dict = field(default_factory=dict, metadata={"doc": "GeneratorConfig fields overriding the preset"})
    steps: int = bounded(2000, 1, 10_000_000, doc="total training steps")
    max_minutes: float = bounded(0.0, 0.0, 1e7, legacy=0.0,
                                 doc="also stop after this many minutes of training in this session (0: no limit); "
                                     "the run checkpoints and exports as at its last step, and --resume continues it")
    image_size: int = bounded(256, 16, 4096, doc="training crop size in pixels (square)")
    batch_size: int = bounded(4, 1, 4096, doc="images per step per process")
    lr_g: float = bounded(_Unset(1e-3), 0.0, 1.0, doc="generator Adam learning rate (a new style on a library, "
                                                               "--base: 0.005)")
    lr_d: float = bounded(2e-4, 0.0, 1.0, doc="discriminator Adam learning rate")
    beta1_g: float = bounded(0.9, 0.0, 0.9999, doc="generator Adam beta1")
    beta1_d: float = bounded(0.5, 0.0, 0.9999, doc="discriminator Adam beta1")
    lambda_content: float = bounded(5.0, 0.0, 1e6, doc="weight of the (relative) content loss")
    lambda_style: float = bounded(_Unset(1.0), 0.0, 1e6, doc="weight of the (relative) Gram style loss (a new "
                                                                     "style on a library, --base: 4)")
    lambda_adv: float = bounded(0.1, 0.0, 1e6,
                                doc="weight of the generator's adversarial loss; 0 trains without a discriminator")
    lambda_tv: float = bounded(20.0, 0.0, 1e6, doc="weight of the total-variation loss")
    lambda_tone: float = bounded(50.0, 0.0, 1e6, legacy=0.0,
                                 doc="weight of the tone loss: the photo's light/dark layout (luminance "
                                     "average-pooled tone_pool×tone_pool, mean removed) kept in the result")
    tone_pool: int = bounded(16, 1, 1024, legacy=16, doc="pooling size (px of a crop) of the tone loss")
    lambda_pixel: float = bounded(0.0, 0.0, 1e6, legacy=0.0,
                                  doc="weight of the L1 distance to the input photo; with --lambda-style 0 and "
                                      "--lambda-adv 0 this trains a base generator (a content-preserving start "
                                      "for --init-from)")
    lambda_warp: float = bounded(0.0, 0.0, 1e6, legacy=0.0,
                                 doc="weight of the warp/noise robustness term (Wang et al. 2020): the result of a "
                                     "slightly moved, noisy photo should be the moved result; steadier video, "
                                     "one more generator pass per step")
    warp_noise: float = bounded(0.02, 0.0, 1.0, legacy=0.02, doc="std of the noise added to the moved photo "
                                                                 "of the warp term (0-1 scale)")
    init_from: str = bounded("", legacy="",
                             doc="fine-tune from this generator (a model folder, registry name or Hub repo): "
                                 "its architecture replaces --preset/--generator, and a new style then needs "
                                 "far fewer steps than from scratch")
    style_layer_weights: tuple[float, ...] = bounded((1.0, 1.0, 1.0, 1.0, 1.0),
                                                     doc=f"relative weights of {' '.join(STYLE_LAYERS)}")
    style_size: int = bounded(1024, 16, 8192,
                              doc="long side (px) the style images are scaled to; larger = finer strokes")
    style_target_images: int = bounded(256, 1, 1_000_000,
                                       doc="at most this many style images (evenly spaced) make the averaged "
                                           "Gram target, to bound start-up time for big domain folders; all of "
                                           "them are the discriminator's real samples")
    content_scale: float = bounded(1.25, 1.0, 8.0,
                                   doc="with --content-size 0: content photos are cached with short side = this × "
                                       "image_size, then cropped")
    content_size: int = bounded(1024, 0, 16384, legacy=0,
                                doc="content photos are cached with this long side (px), the size you will "
                                    "stylise at, so training sees scenes at their real scale; 0: see "
                                    "--content-scale")
    crop_scale_min: float = bounded(0.5, 0.05, 1.0, legacy=1.0,
                                    doc="each content crop covers image_size to image_size / this source pixels "
                                        "(random, resized to image_size): scenes at several scales; 1: plain crops")
    color_jitter: float = bounded(0.1, 0.0, 0.5, legacy=0.0,
                                  doc="random exposure, gamma and saturation change of each content crop (± fraction)")
    adv_mode: str = bounded("lsgan", choices=ADV_MODES, doc="adversarial (GAN) loss")
    warmup_steps: int = bounded(200, 0, 10_000_000, doc="content/style-only steps before the adversarial term")
    d_channels: int = bounded(64, 1, 1024, doc="discriminator base channels")
    d_layers: int = bounded(3, 1, 6, doc="discriminator stride-2 layers (3 → 70 px patches)")
    d_scales: int = bounded(1, 1, 4, doc="discriminator scales (more than 1: multi-scale PatchGAN)")
    spectral_norm: bool = bounded(True, doc="spectral normalisation in the discriminator")
    ema_decay: float = bounded(0.999, 0.0, 1.0, doc="EMA decay of the exported generator weights")
    encoder: str = bounded("vgg19", legacy="vgg16",
                           doc="loss encoder: registry name (vgg19, vgg16), local .safetensors file, or Hub repo")
    device: str = bounded("auto", doc="'auto', 'cpu', 'cuda', 'cuda:1', 'mps' …")
    mixed_precision: str = bounded("auto", choices=MIXED_PRECISION_MODES,
                                   doc="'auto' = bf16 autocast on CUDA and fp32 elsewhere; 'bf16' also on "
                                       "CPUs with bf16 support")
    seed: int = bounded(0, 0, 2**63 - 1, doc="seed of initialisation and data order")
    log_every: int = bounded(10, 1, 10_000_000, doc="steps between loss-log rows")
    sample_every: int = bounded(250, 0, 10_000_000, doc="steps between sample grids (0: never)")
    checkpoint_every: int = bounded(500, 0, 10_000_000, doc="steps between checkpoints (0: only at the end)")
    keep_checkpoints: int = bounded(2, 1, 1000, doc="newest checkpoints kept")
    num_previews: int = bounded(4, 0, 16, doc="content images shown in sample grids")
    export_fp16: bool = bounded(False, doc="export the generator in fp16 (half the file size)")
    progress: bool = bounded(True, doc="show a tqdm progress bar")

    def __post_init__(self):
        for name in ("content", "style", "styles"):
            value = getattr(self, name)
            if isinstance(value, (str, os.PathLike)):
                value = (value,)
            setattr(self, name, tuple(str(v) for v in value))
        self.style_layer_weights = tuple(float(w) for w in self.style_layer_weights)
        if self.base:
            for name, new_style_default in NEW_STYLE_DEFAULTS.items():
                if isinstance(getattr(self, name), _Unset):
                    setattr(self, name, new_style_default)

    def validate(self) -> None:
        if not self.content:
            raise ValueError("field 'content' is empty: give a folder of content photos (--content DIR)")
        if self.style and self.styles:
            raise ValueError("fields 'style' and 'styles' are both given: --style trains one style (its images "
                             "blended), --styles a library (one style per entry); choose one")
        if not self.style and not self.styles and self.needs_style:
            raise ValueError("field 'style' is empty: give a style image or folder (--style PATH_OR_DIR), or "
                             "several styles for a library (--styles A.jpg B.jpg …)")
        if self.arbitrary and not self.styles:
            raise ValueError("field 'arbitrary' needs 'styles': folders of training styles (--styles DIR, each "
                             "subfolder or image one style)")
        if self.freeze_convolutions and not self.init_from:
            raise ValueError("field 'freeze_convolutions' needs 'init_from': a fresh generator must train its "
                             "convolutions")
        if self.arbitrary and self.base:
            raise ValueError("fields 'arbitrary' and 'base' exclude each other")
        if self.base and (self.styles or self.init_from):
            raise ValueError("field 'base' (add one style to a library) goes with --style, not with --styles or "
                             "--init-from")
        if not isinstance(self.style_info, dict) or not all(isinstance(v, dict) for v in self.style_info.values()):
            raise ValueError(f"field 'style_info' must map style names to objects, got {self.style_info!r}")
        if not self.out:
            raise ValueError("field 'out' is empty: give a run folder (--out RUN_DIR)")
        if len(self.style_layer_weights) != len(STYLE_LAYERS):
            raise ValueError(f"field 'style_layer_weights' needs {len(STYLE_LAYERS)} values "
                             f"({', '.join(STYLE_LAYERS)}), got {len(self.style_layer_weights)}")
        if any(not math.isfinite(w) or w < 0 for w in self.style_layer_weights):
            raise ValueError(f"field 'style_layer_weights' must be finite and non-negative, got "
                             f"{list(self.style_layer_weights)}")
        if not isinstance(self.generator, dict):
            raise ValueError(f"field 'generator' must be an object of GeneratorConfig fields, got {self.generator!r}")

    @property
    def needs_style(self) -> bool:
        """False for a base generator (no style loss, no discriminator)."""
        return self.lambda_style > 0 or self.lambda_adv > 0

    def generator_config(self) -> GeneratorConfig:
        base = config_to_dict(preset_config(self.preset))
        unknown = sorted(set(self.generator) - {f.name for f in dataclasses.fields(GeneratorConfig)})
        if unknown:
            raise ConfigError(f"training option 'generator' has unknown GeneratorConfig fields {unknown}")
        return config_from_dict(GeneratorConfig, {**base, **self.generator}, source="training option 'generator'")

    def discriminator_config(self) -> DiscriminatorConfig:
        return DiscriminatorConfig(base_channels=self.d_channels, max_channels=8 * self.d_channels,
                                   num_layers=self.d_layers, num_scales=self.d_scales,
                                   spectral_norm=self.spectral_norm, num_styles=len(self.styles))

    def shareable(self, *, local_encoder: str) -> dict:
        """The options for a model card: local paths stay private when the folder is shared, so
        only their last component is shown, and ``local_encoder`` stands for an encoder file."""
        shown = config_to_dict(self)
        shown.update(content=[Path(p).name for p in self.content], style=[Path(p).name for p in self.style],
                     styles=[Path(p).name if "=" not in p else p.split("=", 1)[0] + "=" + Path(p.split("=", 1)[1]).name
                             for p in self.styles],
                     out=Path(os.path.expanduser(self.out)).name)
        if Path(self.encoder).exists():
            shown["encoder"] = local_encoder
        return {k: v for k, v in shown.items() if not k.startswith("_")}


SOURCE = "training options"   # how refusals name the options ("training options: field 'steps' is 0, …")


def validated(config: TrainConfig) -> TrainConfig:
    """Re-build ``config`` through the strict ``config.json`` validator (types and bounds)."""
    return config_from_dict(TrainConfig, config_to_dict(config), source=SOURCE)


def check_given(values: dict) -> None:
    """Check some options ({field: value}) against their fields' types and bounds, with the words
    of :func:`validated`, before a front-end does any work (a TrainConfig needs every input)."""
    check_fields(TrainConfig, values, SOURCE)


def load_options(path: Path, *, what: str = "cannot resume this run") -> TrainConfig:
    """The :class:`TrainConfig` saved in a run's ``options.json``, validated."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e}); {what}") from e
    return config_from_dict(TrainConfig, data, source=str(path))


def check_run_folder(run_dir: Path, config: TrainConfig, *, resume: bool) -> None:
    """Never overwrite another run; on resume, refuse options that would change the maths."""
    options_file = run_dir / "options.json"
    if not options_file.exists():
        return
    if not resume:
        raise ConfigError(f"{run_dir} already holds a training run ({options_file.name}); pass "
                          f"--resume to continue it, or choose another --out folder")
    saved = load_options(options_file)
    changed = [f.name for f in dataclasses.fields(TrainConfig)
               if f.name not in RESUMABLE_CHANGES and getattr(saved, f.name) != getattr(config, f.name)]
    if changed:
        details = ", ".join(f"{n}: {getattr(saved, n)!r} → {getattr(config, n)!r}" for n in changed)
        raise ConfigError(f"cannot resume {run_dir}: options differ from {options_file.name} ({details}). "
                          f"Only {sorted(RESUMABLE_CHANGES)} may change when resuming.")
