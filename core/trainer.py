"""GAN style training: one readable :class:`Trainer` with an explicit loop.

What is trained
    A feed-forward :class:`~ganstyle.core.generator.StyleGenerator` G maps content photos to
    stylised images. Its loss is

        λ_content · content + λ_style · style + λ_tv · TV + λ_adv · adversarial

    * content — MSE of VGG ``relu4_2`` features of G(x) and x, divided by the mean square of the
      target features (a relative error, so λ does not depend on the encoder's activation scale);
    * style — Gram-matrix MSE at ``relu1_1 … relu5_1`` against the *averaged* Gram of all style
      images; each layer's error is divided by the mean square of its target Gram (the raw values
      of VGG Gram matrices span six orders of magnitude from relu1_1 to relu5_1), then weighted
      by ``style_layer_weights``;
    * TV — total variation of G(x) (smoothness);
    * adversarial — a spectral-norm PatchGAN D (:mod:`ganstyle.core.discriminator`) whose real
      samples are random crops of the style images ("cross-domain": one painting, several, or a
      whole folder of an artist's works). Enabled after ``warmup_steps`` of content/style only.

    G and D take alternating Adam steps (:meth:`Trainer.optimize_parameters`, CycleGAN's pattern);
    an EMA of G's weights is what gets exported.

Run folder (``config.out``)
    ``options.json`` (the :class:`TrainConfig`), ``run_info.json`` (resolved device, encoder, data
    counts…), ``losses.csv`` (+ TensorBoard events when installed), ``samples/step_N.png``,
    ``checkpoints/step_N/`` and, at the end, ``model/`` = ``model.safetensors`` + ``config.json``
    + ``README.md`` model card + ``samples.png``.

Checkpoints and exact resume
    A checkpoint is a folder with ``state.safetensors`` (G, D, EMA and both optimisers' tensors)
    and ``trainer_state.json`` (step, optimiser hyper-parameters, torch/numpy/python RNG states,
    data-sampler state, log accumulators) — no pickle anywhere. It is written into a temporary
    folder and renamed into place, so a crash leaves the previous checkpoint intact; older ones are
    pruned only after the new one is complete. Batches are a pure function of ``(seed, step)``
    (:class:`~ganstyle.core.data.CropSampler`), so 2 steps + resume + 2 steps equals 4 steps.

More than one machine
    Under ``torchrun`` (``WORLD_SIZE`` > 1) G and D are wrapped in DistributedDataParallel
    (NCCL on GPUs, gloo on CPUs); ``batch_size`` is per process and each rank takes its slice of
    the same global batch. Only rank 0 writes files. Resuming reads ``RUN_DIR`` on every rank, so
    multi-node runs need it on a shared file system.
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import io as _io
import json
import math
import os
import random
import shutil
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from .config import bounded, config_from_dict, config_to_dict
from .device import resolve_device
from .discriminator import DiscriminatorConfig, PatchDiscriminator
from .errors import ConfigError, WeightsError
from .features import compute_style_features
from .generator import PRESETS, GeneratorConfig, StyleGenerator, preset_config
from .images import image_grid, save_image
from .io import atomic_write_bytes, atomic_write_json, check_safetensors_file, tensors_fingerprint
from .data import CropSampler, ImageSet, load_image_set, preview_images
from .losses import ADV_MODES, adversarial_loss, content_loss, gram_style_loss, total_variation
from .vgg import CONTENT_LAYER, STYLE_LAYERS, VGGEncoder, load_vgg_encoder

CHECKPOINT_FORMAT = 1
LOSS_KEYS = ("loss_g", "content", "style", "tv", "adv_g", "loss_d", "d_real", "d_fake")
# Options that may differ when resuming (they do not change the maths of a training step).
RESUMABLE_CHANGES = frozenset({"steps", "log_every", "sample_every", "checkpoint_every",
                               "keep_checkpoints", "num_previews", "export_fp16", "progress", "device"})


@dataclass(kw_only=True)
class TrainConfig:
    """Every training option; saved as ``options.json`` in the run folder.

    The loss weights were calibrated with a VGG16 ImageNet encoder on real photos and a painting
    (λ_content 1 loses the content entirely; 5 keeps it recognisable while the style loss falls
    from ~2.8 to ~1.2–1.8 in 200–300 steps; λ_tv 1 leaves a 2-pixel grid in the "fast" preset's
    output, 20 removes it at some softness). Content and style are *relative* errors, so the
    weights do not depend on the encoder's activation scale."""
    content: tuple[str, ...] = bounded((), doc="content photos: folder(s) and/or image file(s)")
    style: tuple[str, ...] = bounded((), doc="style source: one image, several, or folder(s) of a domain")
    out: str = bounded("", doc="run folder (options, logs, samples, checkpoints, exported model)")
    preset: str = bounded("fast", choices=tuple(PRESETS), doc="generator architecture preset")
    generator: dict = field(default_factory=dict, metadata={"doc": "GeneratorConfig fields overriding the preset"})
    steps: int = bounded(2000, 1, 10_000_000, doc="total optimisation steps")
    image_size: int = bounded(256, 16, 4096, doc="training crop size in pixels (square)")
    batch_size: int = bounded(4, 1, 4096, doc="images per step per process")
    lr_g: float = bounded(1e-3, 0.0, 1.0, doc="generator Adam learning rate")
    lr_d: float = bounded(2e-4, 0.0, 1.0, doc="discriminator Adam learning rate")
    beta1_g: float = bounded(0.9, 0.0, 0.9999, doc="generator Adam beta1")
    beta1_d: float = bounded(0.5, 0.0, 0.9999, doc="discriminator Adam beta1")
    lambda_content: float = bounded(5.0, 0.0, 1e6, doc="weight of the (relative) content loss")
    lambda_style: float = bounded(1.0, 0.0, 1e6, doc="weight of the (relative) Gram style loss")
    lambda_adv: float = bounded(0.05, 0.0, 1e6, doc="weight of the generator's adversarial loss")
    lambda_tv: float = bounded(10.0, 0.0, 1e6, doc="weight of the total-variation loss")
    style_layer_weights: tuple[float, ...] = bounded((1.0, 1.0, 1.0, 1.0, 1.0),
                                                     doc="relative weight of relu1_1 … relu5_1")
    style_size: int = bounded(512, 16, 8192, doc="long side (px) the style images are scaled to")
    style_target_images: int = bounded(256, 1, 1_000_000,
                                       doc="at most this many style images (evenly spaced) make the averaged "
                                           "Gram target; all of them are the discriminator's real samples")
    content_scale: float = bounded(1.25, 1.0, 8.0, doc="content photos are cached with short side = this × image_size")
    adv_mode: str = bounded("lsgan", choices=ADV_MODES, doc="adversarial loss")
    warmup_steps: int = bounded(200, 0, 10_000_000, doc="content/style-only steps before the adversarial term")
    d_channels: int = bounded(64, 1, 1024, doc="discriminator base channels")
    d_layers: int = bounded(3, 1, 6, doc="discriminator stride-2 layers (3 → 70 px patches)")
    d_scales: int = bounded(1, 1, 4, doc="discriminator scales (multi-scale PatchGAN)")
    spectral_norm: bool = bounded(True, doc="spectral norm in the discriminator")
    ema_decay: float = bounded(0.999, 0.0, 1.0, doc="EMA decay of the exported generator weights")
    encoder: str = bounded("vgg16", doc="VGG reference: registry name, local .safetensors, or Hub repo")
    device: str = bounded("auto", doc="'auto', 'cpu', 'cuda', 'cuda:1', 'mps' …")
    mixed_precision: str = bounded("auto", choices=("auto", "bf16", "fp32"),
                                   doc="'auto' = bf16 autocast on CUDA, fp32 elsewhere")
    seed: int = bounded(0, 0, 2**63 - 1, doc="seed of initialisation and data order")
    log_every: int = bounded(10, 1, 10_000_000, doc="steps between loss-log rows")
    sample_every: int = bounded(250, 0, 10_000_000, doc="steps between sample grids (0: never)")
    checkpoint_every: int = bounded(500, 0, 10_000_000, doc="steps between checkpoints (0: only at the end)")
    keep_checkpoints: int = bounded(2, 1, 1000, doc="newest checkpoints kept")
    num_previews: int = bounded(4, 0, 16, doc="content images shown in sample grids")
    export_fp16: bool = bounded(False, doc="export the generator in fp16 (half the file size)")
    progress: bool = bounded(True, doc="show a tqdm progress bar")

    def __post_init__(self):
        for name in ("content", "style"):
            value = getattr(self, name)
            if isinstance(value, (str, os.PathLike)):
                value = (value,)
            setattr(self, name, tuple(str(v) for v in value))
        self.style_layer_weights = tuple(float(w) for w in self.style_layer_weights)

    def validate(self) -> None:
        if not self.content:
            raise ValueError("field 'content' is empty: give a folder of content photos (--content DIR)")
        if not self.style:
            raise ValueError("field 'style' is empty: give a style image or folder (--style PATH_OR_DIR)")
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

    def generator_config(self) -> GeneratorConfig:
        base = config_to_dict(preset_config(self.preset))
        unknown = sorted(set(self.generator) - {f.name for f in dataclasses.fields(GeneratorConfig)})
        if unknown:
            raise ConfigError(f"training option 'generator' has unknown GeneratorConfig fields {unknown}")
        return config_from_dict(GeneratorConfig, {**base, **self.generator}, source="training option 'generator'")

    def discriminator_config(self) -> DiscriminatorConfig:
        return DiscriminatorConfig(base_channels=self.d_channels, max_channels=8 * self.d_channels,
                                   num_layers=self.d_layers, num_scales=self.d_scales,
                                   spectral_norm=self.spectral_norm)


def validated(config: TrainConfig) -> TrainConfig:
    """Re-build ``config`` through the strict ``config.json`` validator (types and bounds)."""
    return config_from_dict(TrainConfig, config_to_dict(config), source="training options")


# ---------------------------------------------------------------------------------------------
class Trainer:
    """Trains a :class:`StyleGenerator` against a PatchGAN with content/style/TV/adversarial losses.

    >>> trainer = Trainer(TrainConfig(content="photos/", style="painting.jpg", out="runs/x"))  # doctest: +SKIP
    >>> model_dir = trainer.train()                                                           # doctest: +SKIP

    ``resume=True`` continues from the newest checkpoint in ``config.out`` (exactly). ``encoder``
    may pass an already loaded :class:`VGGEncoder` instead of loading ``config.encoder``.
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False, encoder: VGGEncoder | None = None):
        self.config = config = validated(config)
        self.run_dir = Path(os.path.expanduser(config.out))
        self.step = 0
        self.elapsed_s = 0.0          # training time of previous sessions (restored on resume)
        self._owns_process_group = False
        self.rank, self.world_size, self.device = self._setup_distributed(config.device)
        self.is_main = self.rank == 0
        self.amp = config.mixed_precision == "bf16" or (config.mixed_precision == "auto" and self.device.type == "cuda")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick the fastest kernels

        self._check_run_folder(resume)
        _seed_everything(config.seed)

        # Data: decoded and downscaled once; fails here (before any model is built) if unusable.
        self.content_images = load_image_set(config.content, what="content images", warn=self.is_main,
                                             short_side=round(config.content_scale * config.image_size))
        self.style_images = load_image_set(config.style, what="style images", warn=self.is_main,
                                           long_side=config.style_size, min_short_side=config.image_size)
        self.content_sampler = CropSampler(self.content_images, config.image_size, config.batch_size,
                                           seed=config.seed, stream="content", rank=self.rank,
                                           world_size=self.world_size)
        self.style_sampler = CropSampler(self.style_images, config.image_size, config.batch_size,
                                         seed=config.seed, stream="style", rank=self.rank, world_size=self.world_size)

        # Loss encoder and style target: the averaged Gram of the style images at style_size (all
        # of them, or style_target_images evenly spaced ones for big domain folders).
        self.encoder = encoder if encoder is not None else load_vgg_encoder(config.encoder, deepest="relu5_1",
                                                                            device=self.device)
        self.encoder = self.encoder.to(self.device).eval().requires_grad_(False)
        self.style_layers = STYLE_LAYERS
        n_style, m = len(self.style_images), min(len(self.style_images), config.style_target_images)
        chosen = [round(i * (n_style - 1) / (m - 1)) for i in range(m)] if m > 1 else [0]
        target = compute_style_features(self.encoder, [self.style_images.as_float(i) for i in chosen],
                                        style_size=None, layers=self.style_layers)
        self.style_target_count = len(chosen)
        self.style_grams = {k: v.to(self.device, torch.float32) for k, v in target.grams.items()}
        self.style_layer_weights = {
            layer: w / max(float(self.style_grams[layer].pow(2).mean()), 1e-12)
            for layer, w in zip(self.style_layers, config.style_layer_weights)}

        # Models. Same seed on every rank → same initial weights (DDP also broadcasts rank 0's).
        torch.manual_seed(config.seed)
        self.generator = StyleGenerator(config.generator_config()).to(self.device).train()
        self.discriminator = PatchDiscriminator(config.discriminator_config()).to(self.device).train()
        if config.lambda_adv > 0 and config.image_size < self.discriminator.config.min_input_size():
            raise ConfigError(f"image_size {config.image_size} is too small for a discriminator with "
                              f"{config.d_layers} layers and {config.d_scales} scale(s) (needs at least "
                              f"{self.discriminator.config.min_input_size()}); raise --image-size or lower "
                              f"--d-layers/--d-scales")
        self.ema_generator = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr_g, betas=(config.beta1_g, 0.999))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_d, betas=(config.beta1_d, 0.999))
        self._g, self._d = self.generator, self.discriminator
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            ids = [self.device.index] if self.device.type == "cuda" else None
            self._g = DDP(self.generator, device_ids=ids)
            self._d = DDP(self.discriminator, device_ids=ids)

        self._reset_log_accumulators()
        self.last_losses: dict[str, float] = {}
        if resume:
            if self.latest_checkpoint() is None:
                self._say(f"--resume: no checkpoint in {self.run_dir / 'checkpoints'} yet; starting at step 0")
            else:
                self.load_checkpoint()

    # ---- setup ------------------------------------------------------------------------------
    def _setup_distributed(self, device_option: str) -> tuple[int, int, torch.device]:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        device = resolve_device(device_option)
        if world_size <= 1:
            return 0, 1, device
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            self._owns_process_group = True
        return dist.get_rank(), dist.get_world_size(), device

    def _check_run_folder(self, resume: bool) -> None:
        """Never overwrite another run; on resume, refuse options that would change the maths."""
        options_file = self.run_dir / "options.json"
        if not options_file.exists():
            return
        if not resume:
            raise ConfigError(f"{self.run_dir} already holds a training run ({options_file.name}); pass "
                              f"--resume to continue it, or choose another --out folder")
        try:
            saved = config_from_dict(TrainConfig, json.loads(options_file.read_text()), source=str(options_file))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{options_file}: not valid JSON ({e}); cannot resume this run") from None
        changed = [f.name for f in dataclasses.fields(TrainConfig)
                   if f.name not in RESUMABLE_CHANGES and getattr(saved, f.name) != getattr(self.config, f.name)]
        if changed:
            details = ", ".join(f"{n}: {getattr(saved, n)!r} → {getattr(self.config, n)!r}" for n in changed)
            raise ConfigError(f"cannot resume {self.run_dir}: options differ from {options_file.name} ({details}). "
                              f"Only {sorted(RESUMABLE_CHANGES)} may change when resuming.")

    # ---- the training step ----------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def adversarial_active(self, step: int) -> bool:
        return self.config.lambda_adv > 0 and step >= self.config.warmup_steps

    def optimize_parameters(self, step: int) -> dict[str, torch.Tensor]:
        """One training step on the batch of ``step``: G step with D frozen, then D step on the
        detached fakes. Returns detached scalar losses (keys of :data:`LOSS_KEYS` that applied)."""
        cfg = self.config
        content = self.content_sampler.batch(step).to(self.device, non_blocking=True)
        adversarial = self.adversarial_active(step)

        # -- generator step (D frozen: gradients flow through it to G but are not kept) --------
        self.discriminator.requires_grad_(False)
        with self._autocast():
            fake = self._g(content)
            feats = self.encoder(fake, (CONTENT_LAYER, *self.style_layers))
            with torch.no_grad():
                target = self.encoder(content, (CONTENT_LAYER,))[CONTENT_LAYER]
        # Relative error per image (so every photo counts the same, and N ranks × b images give
        # exactly the loss of one process with N·b images).
        target_energy = target.float().pow(2).flatten(1).mean(1).clamp_min(1e-12)
        l_content = (content_loss(feats[CONTENT_LAYER], target, reduction="none") / target_energy).mean()
        l_style = gram_style_loss({k: feats[k] for k in self.style_layers}, self.style_grams,
                                  self.style_layer_weights)
        l_tv = total_variation(fake.float())
        loss_g = cfg.lambda_content * l_content + cfg.lambda_style * l_style + cfg.lambda_tv * l_tv
        losses = {"content": l_content, "style": l_style, "tv": l_tv}
        if adversarial:
            with self._autocast():
                # The unwrapped D: its parameters are frozen, so DDP has nothing to synchronise.
                logits = self.discriminator(fake)
            l_adv = sum(adversarial_loss(lg, True, cfg.adv_mode, for_discriminator=False)
                        for lg in logits) / len(logits)
            loss_g = loss_g + cfg.lambda_adv * l_adv
            losses["adv_g"] = l_adv
        losses["loss_g"] = loss_g
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self._update_ema(step)

        # -- discriminator step on real style crops vs. the detached fakes ---------------------
        if adversarial:
            self.discriminator.requires_grad_(True)
            real = self.style_sampler.batch(step).to(self.device, non_blocking=True)
            n = real.shape[0]
            with self._autocast():
                logits = self._d(torch.cat([real, fake.detach()]))  # one pass: both halves, one DDP sync
            d_real = sum(adversarial_loss(lg[:n], True, cfg.adv_mode) for lg in logits) / len(logits)
            d_fake = sum(adversarial_loss(lg[n:], False, cfg.adv_mode) for lg in logits) / len(logits)
            loss_d = 0.5 * (d_real + d_fake)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            losses.update(loss_d=loss_d, d_real=d_real, d_fake=d_fake)
        return {k: v.detach().float() for k, v in losses.items()}

    @torch.no_grad()
    def _update_ema(self, step: int) -> None:
        # Warm-up of the decay (as in timm/diffusers): early EMA tracks the fast-moving weights.
        decay = min(self.config.ema_decay, (1 + step) / (10 + step))
        for ema_p, p in zip(self.ema_generator.parameters(), self.generator.parameters()):
            ema_p.lerp_(p.detach(), 1.0 - decay)
        for ema_b, b in zip(self.ema_generator.buffers(), self.generator.buffers()):
            ema_b.copy_(b)

    # ---- the loop ---------------------------------------------------------------------------
    def train(self) -> Path | None:
        """Run until ``config.steps``; export the EMA generator. Returns ``RUN_DIR/model`` (rank 0)."""
        from tqdm.auto import tqdm

        cfg = self.config
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.run_dir / "options.json", config_to_dict(cfg))
            atomic_write_json(self.run_dir / "run_info.json", self.run_info())
            self._open_logs()
        self._say(f"training {cfg.preset} generator: {len(self.content_images)} content / {len(self.style_images)} "
                  f"style images, {cfg.image_size}px crops, batch {cfg.batch_size}×{self.world_size}, "
                  f"device {self.device}{' (bf16 autocast)' if self.amp else ''}, step {self.step} → {cfg.steps}")
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not (self.is_main and cfg.progress),
                   desc="ganstyle train", unit="step", dynamic_ncols=True)
        started = time.perf_counter()
        session_start = self.elapsed_s
        previous_handler = self._catch_ctrl_c()
        try:
            while self.step < cfg.steps:
                losses = self.optimize_parameters(self.step)
                self.step += 1
                self.elapsed_s = session_start + time.perf_counter() - started
                self._accumulate(losses)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    row = self._flush_log()
                    shown = ("content", "style", "adv_g", "loss_d")
                    bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k in shown}, refresh=False)
                bar.update(1)
                if cfg.sample_every and self.step % cfg.sample_every == 0:
                    self.save_samples()
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
                if self._stop_requested:
                    self.save_checkpoint()
                    self._say(f"stopped at step {self.step}: checkpoint saved; continue with --resume")
                    raise KeyboardInterrupt
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            bar.close()
            self._close_logs()
        self.save_checkpoint()
        self._check_ranks_in_sync()
        model_dir = self.export() if self.is_main else None
        self._barrier()
        if self._owns_process_group:
            dist.destroy_process_group()
        return model_dir

    def _catch_ctrl_c(self):
        """First Ctrl-C: finish the current step, save a checkpoint, stop (a checkpoint taken in
        the middle of a step would not resume exactly). Second Ctrl-C: abort at once. Only for a
        single process in the main thread; under torchrun the launcher handles signals."""
        self._stop_requested = False
        if self.world_size > 1 or threading.current_thread() is not threading.main_thread():
            return None
        previous = signal.getsignal(signal.SIGINT)

        def request_stop(signum, frame):
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True
            self._say("Ctrl-C: stopping after this step (press again to abort without saving)")

        signal.signal(signal.SIGINT, request_stop)
        return previous

    # ---- logging ----------------------------------------------------------------------------
    def _say(self, message: str) -> None:
        if self.is_main:
            from tqdm.auto import tqdm
            tqdm.write(f"[ganstyle] {message}", file=sys.stderr)

    def _reset_log_accumulators(self) -> None:
        self._pending: list[dict[str, torch.Tensor]] = []
        self._stop_requested = False

    def _accumulate(self, losses: dict[str, torch.Tensor]) -> None:
        # Keep tensors (no .item() per step: that would synchronise the GPU every step).
        self._pending.append(losses)

    def _flush_log(self) -> dict[str, float]:
        """Average the losses since the last row (over all ranks), write a CSV/TensorBoard row."""
        sums = torch.zeros(len(LOSS_KEYS), dtype=torch.float64, device=self.device)
        counts = torch.zeros(len(LOSS_KEYS), dtype=torch.float64, device=self.device)
        for losses in self._pending:
            for i, k in enumerate(LOSS_KEYS):
                if k in losses:
                    sums[i] += losses[k]
                    counts[i] += 1
        self._pending = []
        if self.world_size > 1:
            packed = torch.stack([sums, counts])
            dist.all_reduce(packed)
            sums, counts = packed[0], packed[1]
        row = {k: float(s / c) for k, s, c in zip(LOSS_KEYS, sums.tolist(), counts.tolist()) if c > 0}
        self.last_losses = row
        if self.is_main:
            self._write_log_row(row)
        return row

    def _open_logs(self) -> None:
        self._csv_path = self.run_dir / "losses.csv"
        header = ["step", "images", "elapsed_s", *LOSS_KEYS]
        rows = []
        if self._csv_path.exists():  # resume: drop rows logged after the checkpoint we resumed from
            with open(self._csv_path, newline="") as f:
                reader = csv.DictReader(f)
                rows = [r for r in reader if r.get("step", "").isdigit() and int(r["step"]) <= self.step]
        text = _io.StringIO()
        writer = csv.DictWriter(text, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self._csv_path, text.getvalue().encode())
        self._csv_file = open(self._csv_path, "a", newline="")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=header, extrasaction="ignore")
        self._tensorboard = None
        try:
            from torch.utils.tensorboard import SummaryWriter
            self._tensorboard = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=self.step or None)
        except (ImportError, ModuleNotFoundError):
            pass  # TensorBoard is optional; the CSV always exists

    def _write_log_row(self, row: dict[str, float]) -> None:
        if getattr(self, "_csv_file", None) is None:
            return
        images = self.step * self.config.batch_size * self.world_size
        self._csv.writerow({"step": self.step, "images": images, "elapsed_s": f"{self.elapsed_s:.2f}",
                            **{k: f"{v:.6g}" for k, v in row.items()}})
        self._csv_file.flush()
        if self._tensorboard is not None:
            for k, v in row.items():
                self._tensorboard.add_scalar(f"loss/{k}", v, self.step)

    def _close_logs(self) -> None:
        if getattr(self, "_csv_file", None) is not None:
            self._csv_file.close()
            self._csv_file = None
        if getattr(self, "_tensorboard", None) is not None:
            self._tensorboard.close()
            self._tensorboard = None

    def run_info(self) -> dict:
        """Resolved facts about this run (device, encoder, data), saved as ``run_info.json``."""
        import ganstyle
        return {
            "ganstyle_version": getattr(ganstyle, "__version__", "unknown"), "torch_version": torch.__version__,
            "device": str(self.device), "world_size": self.world_size,
            "global_batch": self.config.batch_size * self.world_size,
            "mixed_precision": "bf16" if self.amp else "fp32",
            "encoder": {"identity": self.encoder.identity, "arch": self.encoder.arch, "source": self.encoder.source},
            "generator": config_to_dict(self.generator.config),
            "discriminator": config_to_dict(self.discriminator.config),
            "parameters": {"generator": _count(self.generator), "discriminator": _count(self.discriminator)},
            "data": {"content": self._data_info(self.content_images), "style": self._data_info(self.style_images),
                     "style_target_images": self.style_target_count},
            "style_layer_weights_effective": {k: float(v) for k, v in self.style_layer_weights.items()},
        }

    @staticmethod
    def _data_info(images: ImageSet) -> dict:
        return {"used": len(images), "skipped": len(images.skipped),
                "skipped_examples": [f"{p}: {why}" for p, why in images.skipped[:5]]}

    # ---- samples and export ---------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self) -> torch.Tensor:
        """(3, H, W) grid: style images on the first row, then content | EMA-stylised pairs."""
        size = self.config.image_size
        rows = [[self.style_images.as_float(i) for i in range(min(4, len(self.style_images)))]]
        for img in preview_images(self.content_images, max(1, self.config.num_previews), size):
            out = self.ema_generator(img.to(self.device)).float().cpu()
            rows.append([img, out])
        return image_grid(rows, height=min(size, 256))

    def save_samples(self) -> Path | None:
        if not self.is_main or self.config.num_previews == 0:
            return None
        return save_image(self.sample_grid(), self.run_dir / "samples" / f"step_{self.step:08d}.png")

    def export(self) -> Path:
        """Write the EMA generator (+ config, model card, sample grid) to ``RUN_DIR/model``."""
        model_dir = self.run_dir / "model"
        dtype = torch.float16 if self.config.export_fp16 else None
        self.ema_generator.save_pretrained(model_dir, dtype=dtype, metadata={
            "ganstyle_steps": str(self.step), "encoder": self.encoder.identity, "preset": self.config.preset})
        save_image(self.sample_grid(), model_dir / "samples.png")
        atomic_write_bytes(model_dir / "README.md", self.model_card().encode())
        info = self.run_info()
        info.update(steps=self.step, elapsed_s=round(self.elapsed_s, 1), final_losses=self.last_losses)
        atomic_write_json(self.run_dir / "run_info.json", info)
        self._say(f"exported the EMA generator to {model_dir}")
        return model_dir

    def model_card(self) -> str:
        cfg = self.config
        name = self.run_dir.name
        def describe(images: ImageSet, sources) -> str:
            skipped = f", {len(images.skipped)} unreadable file(s) skipped" if images.skipped else ""
            return f"{len(images)} image(s) from {', '.join(f'`{Path(s).name}`' for s in sources)}{skipped}"
        losses = "\n".join(f"| {k} | {v:.4g} |" for k, v in self.last_losses.items()) or "| (none logged) | |"
        shown = config_to_dict(cfg)
        # local paths stay private when the folder is shared: only their last component is shown
        shown.update(content=[Path(p).name for p in cfg.content], style=[Path(p).name for p in cfg.style],
                     out=self.run_dir.name, encoder=self.encoder.arch if Path(cfg.encoder).exists() else cfg.encoder)
        options = "\n".join(f"| `{k}` | `{json.dumps(v) if not isinstance(v, str) else v}` |"
                            for k, v in shown.items() if not k.startswith("_"))
        return f"""---
library_name: ganstyle
pipeline_tag: image-to-image
tags:
- style-transfer
- ganstyle
- comfyui
---

# {name}

A feed-forward style-transfer generator (`{cfg.preset}` preset, {_count(self.ema_generator):,} parameters)
trained with `ganstyle train` for {self.step} steps: content + Gram style + total variation
+ PatchGAN adversarial losses, exported as the EMA of the generator weights.

![samples: style on the first row, then content | stylised](samples.png)

## Use

```python
from ganstyle.core.generator import StyleGenerator
from ganstyle.core.images import load_image, save_image

model = StyleGenerator.from_pretrained("path/to/this/folder")
save_image(model(load_image("photo.jpg")), "stylised.png")
```

In ComfyUI, put this folder in `models/style_transfer/`.

## Training data

- content: {describe(self.content_images, cfg.content)}
- style: {describe(self.style_images, cfg.style)}

Check the licences of the style and content images before sharing this model.

## Training

- steps: {self.step}, global batch {cfg.batch_size * self.world_size} ({self.world_size} process(es)), {cfg.image_size}px crops
- device: {self.device}, precision {'bf16 autocast' if self.amp else 'fp32'}, training time {self.elapsed_s / 60:.1f} min
- loss encoder: {self.encoder.arch} `{self.encoder.identity}`

### Final losses (average of the last logging interval)

| loss | value |
|---|---|
{losses}

### Options

| option | value |
|---|---|
{options}
"""

    # ---- checkpoints ------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint folder. Folders appear only by renaming a completely
        written temporary folder, so every ``step_N`` folder is complete."""
        found = sorted(self.checkpoint_dir.glob("step_*"), key=_checkpoint_step)
        found = [p for p in found if p.is_dir() and _checkpoint_step(p) >= 0]
        return found[-1] if found else None

    def checkpoint_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, JSON state) of a checkpoint; see :meth:`load_checkpoint`."""
        tensors: dict[str, torch.Tensor] = {}
        for prefix, module in (("generator", self.generator), ("discriminator", self.discriminator),
                               ("ema", self.ema_generator)):
            tensors.update({f"{prefix}.{k}": v for k, v in module.state_dict().items()})
        optimizers = {}
        for prefix, opt in (("optim_g", self.opt_g), ("optim_d", self.opt_d)):
            opt_tensors, optimizers[prefix] = _flatten_optimizer(opt, prefix)
            tensors.update(opt_tensors)
        state = {
            "format": CHECKPOINT_FORMAT, "step": self.step, "elapsed_s": self.elapsed_s,
            "world_size": self.world_size, "options": config_to_dict(self.config),
            "optimizers": optimizers, "rng": _rng_state(),
            "data": {"content": self.content_sampler.state_dict(), "style": self.style_sampler.state_dict()},
            "last_losses": self.last_losses,
        }
        return tensors, state

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/step_N`` atomically (temp folder → rename), then prune old ones.

        Only rank 0 writes; the other ranks wait for it."""
        path = None
        if self.is_main:
            path = self.checkpoint_dir / f"step_{self.step:08d}"
            if not path.exists():
                tensors, state = self.checkpoint_state()
                tmp = self.checkpoint_dir / f".tmp-step_{self.step:08d}-{os.getpid()}"
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                try:
                    atomic_write_bytes(tmp / "state.safetensors", safetensors_bytes(
                        {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()},
                        metadata={"format": "ganstyle-checkpoint", "step": str(self.step)}))
                    atomic_write_bytes(tmp / "trainer_state.json", json.dumps(state, indent=1).encode())
                    os.replace(tmp, path)  # atomic: the folder appears complete or not at all
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
            atomic_write_json(self.checkpoint_dir / "latest.json", {"step": self.step, "folder": path.name})
            self._prune_checkpoints(keep=path)
        self._barrier()
        return path

    def _prune_checkpoints(self, keep: Path) -> None:
        for stale in self.checkpoint_dir.glob(".tmp-step_*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a crash mid-write; never read
        folders = sorted((p for p in self.checkpoint_dir.glob("step_*") if _checkpoint_step(p) >= 0),
                         key=_checkpoint_step)
        for old in folders[:-self.config.keep_checkpoints]:
            if old != keep:
                # rename first (atomic), then delete: a crash mid-delete must not leave a
                # half-emptied 'step_N' folder that looks like a complete checkpoint
                trash = self.checkpoint_dir / f".tmp-{old.name}-deleting-{os.getpid()}"
                try:
                    os.replace(old, trash)
                except OSError:
                    continue
                shutil.rmtree(trash, ignore_errors=True)

    def load_checkpoint(self, path: str | os.PathLike | None = None) -> int:
        """Restore everything from a checkpoint folder (default: the newest) and return its step."""
        folder = Path(path) if path is not None else self.latest_checkpoint()
        if folder is None:
            raise WeightsError(f"no checkpoint found in {self.checkpoint_dir}")
        state_file, tensor_file = folder / "trainer_state.json", folder / "state.safetensors"
        try:
            state = json.loads(state_file.read_text())
        except FileNotFoundError:
            raise WeightsError(f"{state_file}: missing; {folder} is not a ganstyle checkpoint") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise WeightsError(f"{state_file}: not valid JSON ({e}); the checkpoint is damaged — delete "
                               f"{folder} to resume from the previous one") from None
        found = state.get("format") if isinstance(state, dict) else None
        if found != CHECKPOINT_FORMAT:
            raise WeightsError(f"{state_file}: unsupported checkpoint format {found!r} (expected {CHECKPOINT_FORMAT})")
        header = check_safetensors_file(tensor_file)
        tensors: dict[str, torch.Tensor] = {}
        try:
            with safe_open(str(tensor_file), framework="pt", device="cpu") as f:
                for key in header:
                    tensors[key] = f.get_tensor(key)
        except Exception as e:
            raise WeightsError(f"{tensor_file}: cannot read tensors ({e})") from None

        for prefix, module in (("generator", self.generator), ("discriminator", self.discriminator),
                               ("ema", self.ema_generator)):
            _load_module(module, tensors, prefix, tensor_file)
        for prefix, opt in (("optim_g", self.opt_g), ("optim_d", self.opt_d)):
            try:
                opt.load_state_dict(_unflatten_optimizer(tensors, state["optimizers"][prefix], prefix))
            except (KeyError, ValueError) as e:
                raise WeightsError(f"{folder}: optimiser state '{prefix}' does not match this model ({e})") from None
        _set_rng_state(state["rng"], self.device)
        saved_world = state.get("data", {}).get("content", {}).get("world_size", self.world_size)
        if saved_world != self.world_size:
            warnings.warn(f"resuming a {saved_world}-process run with {self.world_size} process(es): the global "
                          f"batch changes, so the data order is no longer identical to an uninterrupted run",
                          stacklevel=2)
        self.step = int(state["step"])
        self.elapsed_s = float(state.get("elapsed_s", 0.0))
        self.last_losses = dict(state.get("last_losses", {}))
        self._say(f"resumed from {folder} (step {self.step})")
        return self.step

    # ---- distributed helpers ----------------------------------------------------------------
    def _barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def weights_fingerprint(self) -> str:
        """sha256-based identity of the G, D and EMA weights (identical on every rank when in sync)."""
        return tensors_fingerprint({f"{prefix}.{k}": v for prefix, module in (
            ("generator", self.generator), ("discriminator", self.discriminator), ("ema", self.ema_generator))
            for k, v in module.state_dict().items()})

    def _check_ranks_in_sync(self) -> None:
        """DDP keeps every rank's weights identical; verify it once at the end (cheap, catches
        non-deterministic ops or a rank that diverged)."""
        if self.world_size <= 1:
            return
        fingerprint = self.weights_fingerprint()
        local = torch.tensor([int(fingerprint[:8], 16), int(fingerprint[8:16], 16)], dtype=torch.int64,
                             device=self.device)
        gathered = [torch.zeros_like(local) for _ in range(self.world_size)]
        dist.all_gather(gathered, local)
        if any(not torch.equal(g, gathered[0]) for g in gathered):
            raise RuntimeError(f"ranks ended with different weights: fingerprints {[g.tolist() for g in gathered]}")
        self._say(f"weights identical on all {self.world_size} ranks")


# ---------------------------------------------------------------------------------------------
def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _checkpoint_step(path: Path) -> int:
    try:
        return int(path.name.removeprefix("step_")) if path.name.startswith("step_") else -1
    except ValueError:
        return -1


def _load_module(module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str, source: Path) -> None:
    expected = module.state_dict()
    state = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or extra or wrong:
        raise WeightsError(f"{source}: the checkpoint's '{prefix}' does not match this model (missing "
                           f"{missing[:4]}, unexpected {extra[:4]}, wrong shapes {wrong[:4]}); was it made "
                           f"with other generator/discriminator options?")
    module.load_state_dict(state, strict=True)


def _flatten_optimizer(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state → tensors ``prefix.<param>.<name>`` + a JSON-able description."""
    sd = opt.state_dict()
    tensors, tensor_names, scalars = {}, {}, {}
    for pid, st in sd["state"].items():
        for name, value in st.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{pid}.{name}"] = value
                tensor_names.setdefault(str(pid), []).append(name)
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "tensor_state": tensor_names, "scalar_state": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict, prefix: str) -> dict:
    state: dict[int, dict] = {}
    for pid, names in meta["tensor_state"].items():
        state[int(pid)] = {name: tensors[f"{prefix}.{pid}.{name}"] for name in names}
    for pid, values in meta["scalar_state"].items():
        state.setdefault(int(pid), {}).update(values)
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    """torch (CPU + CUDA), numpy and python RNG states as JSON lists (no pickle)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    cuda = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return {"torch": torch.get_rng_state().tolist(), "cuda": cuda,
            "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "python": [py_state[0], list(py_state[1]), py_state[2]]}


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if state.get("cuda") and torch.cuda.is_available():
        cuda = [torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))

