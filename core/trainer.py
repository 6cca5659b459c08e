"""GAN style training: one readable :class:`Trainer` with an explicit loop.

What is trained
    A feed-forward :class:`~ganstyle.core.generator.StyleGenerator` G maps content photos to
    stylised images. Its loss is

        λ_content · content + λ_style · style + λ_tv · TV + λ_adv · adversarial

    * content and style — :class:`~ganstyle.core.losses.PerceptualLoss`: the MSE of VGG
      ``relu4_2`` features of G(x) and x relative to the target's energy, and the Gram-matrix MSE
      at ``relu1_1 … relu5_1`` against the *averaged* Gram of the style images, each layer
      relative to its target's energy and weighted by ``style_layer_weights``;
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

Exact resume
    A checkpoint (:mod:`ganstyle.core.training.checkpoint`) holds everything a step depends on,
    and batches are a pure function of ``(seed, step)`` (:class:`~ganstyle.core.data.CropSampler`),
    so 2 steps + resume + 2 steps equals 4 steps.

More than one machine
    Under ``torchrun`` (``WORLD_SIZE`` > 1) G and D are wrapped in DistributedDataParallel
    (:mod:`ganstyle.core.training.distributed`); ``batch_size`` is per process and each rank takes
    its slice of the same global batch. Only rank 0 writes files. Resuming reads ``RUN_DIR`` on
    every rank, so multi-node runs need it on a shared file system.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import os
import time
import warnings
from pathlib import Path

import torch

from .config import config_to_dict
from .data import CropSampler, ImageSet
from .discriminator import PatchDiscriminator
from .errors import ConfigError, WeightsError
from .images import save_image
from .io import atomic_write_bytes, atomic_write_json, tensors_fingerprint
from .losses import (
    PerceptualLoss,
    adversarial_loss,
    random_small_warps,
    tone_loss,
    total_variation,
    warp,
    warp_consistency_loss,
)
from .model_card import model_card
from .training.checkpoint import (
    CHECKPOINT_FORMAT,
    latest_checkpoint,
    module_tensors,
    pack_state,
    read_checkpoint,
    rng_state,
    seed_everything,
    set_rng_state,
    unpack_state,
    write_checkpoint,
)
from .training.config import RESUMABLE_CHANGES, TrainConfig, check_run_folder, validated
from .training.distributed import (
    all_reduce_sum,
    barrier,
    check_ranks_in_sync,
    data_parallel,
    setup_distributed,
    shutdown,
)
from .training.report import run_info, sample_grid, training_facts
from .training.run_log import LOSS_KEYS, LossLog
from .training.setup import initial_generator, load_training_data, style_target
from .training.stopping import StopRequest
from .training.styles import build_style_set
from .vgg import CONTENT_LAYER, STYLE_LAYERS, VGGEncoder, has_inference_tensors, load_vgg_encoder, private_copy

__all__ = ["Trainer", "TrainConfig", "RESUMABLE_CHANGES", "LOSS_KEYS", "CHECKPOINT_FORMAT", "validated"]

logger = logging.getLogger(__name__)


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
        self.rank, self.world_size, self.device, self._owns_process_group = setup_distributed(config.device)
        self.is_main = self.rank == 0
        self.amp = config.mixed_precision == "bf16" or (config.mixed_precision == "auto" and self.device.type == "cuda")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick the fastest kernels
        # bf16 convolutions are fastest on channels-last tensors (cuDNN and oneDNN/AMX alike)
        self.memory_format = torch.channels_last if self.amp else torch.contiguous_format

        check_run_folder(self.run_dir, config, resume=resume)
        seed_everything(config.seed)

        # Data: decoded and downscaled once; fails here (before any model is built) if unusable.
        data = load_training_data(config, rank=self.rank, world_size=self.world_size, warn=self.is_main)
        self.content_images, self.content_sampler = data.content_images, data.content_sampler

        # Loss encoder and each style's target (the averaged Gram of its images at style_size).
        if encoder is not None and has_inference_tensors(encoder):   # e.g. loaded by a ComfyUI node
            encoder = private_copy(encoder)
        self.encoder = encoder if encoder is not None else load_vgg_encoder(config.encoder, deepest="relu5_1",
                                                                            device=self.device)
        self.encoder = self.encoder.to(self.device, memory_format=self.memory_format).eval().requires_grad_(False)
        self.style_layers = STYLE_LAYERS if config.lambda_style > 0 else ()
        self.styles = build_style_set(config, data.styles, self.encoder, self.device, style_target,
                                      cache=self.run_dir / "style_statistics.safetensors" if self.is_main else None)

        # Models. Same seed on every rank → same initial weights (DDP also broadcasts rank 0's).
        torch.manual_seed(config.seed)
        self.generator = initial_generator(config).to(self.device, memory_format=self.memory_format).train()
        if self.styles.arbitrary:   # the predictor reads standardised vectors of the encoder in use
            self.generator.config.style_encoder = self.encoder.identity
            self.generator.predictor.standardize(self.styles.vectors.flatten(0, 1))
        d_config = dataclasses.replace(config.discriminator_config(),
                                       num_styles=len(self.styles) if self.styles.library else 0)
        self.discriminator = PatchDiscriminator(d_config).to(
            self.device, memory_format=self.memory_format).train()
        if config.lambda_adv > 0 and config.image_size < self.discriminator.config.min_input_size():
            raise ConfigError(f"image_size {config.image_size} is too small for a discriminator with "
                              f"{config.d_layers} layers and {config.d_scales} scale(s) (needs at least "
                              f"{self.discriminator.config.min_input_size()}); raise --image-size or lower "
                              f"--d-layers/--d-scales")
        if config.base or config.freeze_convolutions:   # the convolutions stay as they are
            trainable = set(self.generator.norm_parameter_names()) | {
                name for name, _ in self.generator.named_parameters() if name.startswith("predictor.")}
            for name, parameter in self.generator.named_parameters():
                parameter.requires_grad_(name in trainable)
        self.ema_generator = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.opt_g = torch.optim.Adam([p for p in self.generator.parameters() if p.requires_grad], lr=config.lr_g,
                                      betas=(config.beta1_g, 0.999))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_d, betas=(config.beta1_d, 0.999))
        self._g = data_parallel(self.generator, self.device, self.world_size)
        self._d = data_parallel(self.discriminator, self.device, self.world_size)

        self.log = LossLog(self.device, self.world_size)
        self.last_losses: dict[str, float] = {}
        if resume:
            if self.latest_checkpoint() is None:
                if self.is_main:
                    logger.info("--resume: no checkpoint in %s yet; starting at step 0", self.checkpoint_dir)
            else:
                self.load_checkpoint()

    # The first (for a single-style run: the only) style's parts, by their pre-library names.
    @property
    def style_images(self) -> ImageSet:
        return self.styles.styles[0].images

    @property
    def style_sampler(self) -> CropSampler | None:
        return self.styles.styles[0].sampler

    @property
    def style_grams(self) -> dict[str, torch.Tensor]:
        return self.styles.styles[0].perceptual.target_grams

    @property
    def style_target_count(self) -> int:
        return self.styles.styles[0].target_count

    @property
    def perceptual(self) -> PerceptualLoss:
        return self.styles.styles[0].perceptual

    # ---- the training step ----------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def adversarial_active(self, step: int) -> bool:
        return self.config.lambda_adv > 0 and step >= self.config.warmup_steps

    def optimize_parameters(self, step: int) -> dict[str, torch.Tensor]:
        """One training step on the batch of ``step``: G step with D frozen, then D step on the
        detached fakes. Returns detached scalar losses (keys of :data:`LOSS_KEYS` that applied).
        A library trains style ``step mod S`` in this step (the generator and D conditioned on it)."""
        cfg = self.config
        content = self.content_sampler.batch(step).to(self.device, non_blocking=True,
                                                      memory_format=self.memory_format)
        adversarial = self.adversarial_active(step)
        index = self.styles.index_for(step)
        style = self.styles.styles[index]
        condition = self.styles.condition(index, content.shape[0], self.device, step)
        labels = self.styles.labels(index, content.shape[0], self.device)

        # -- generator step (D frozen: gradients flow through it to G but are not kept) --------
        self.discriminator.requires_grad_(False)
        with self._autocast():
            fake = self._g(content) if condition is None else self._g(content, condition)
            feats = self.encoder(fake, (CONTENT_LAYER, *self.style_layers))
            with torch.no_grad():
                target = self.encoder(content, (CONTENT_LAYER,))[CONTENT_LAYER]
        # Relative content error per image (so every photo counts the same, and N ranks × b
        # images give exactly the loss of one process with N·b images).
        l_content, l_style = style.perceptual(feats, target)
        l_tv = total_variation(fake.float())
        loss_g = cfg.lambda_content * l_content + cfg.lambda_style * l_style + cfg.lambda_tv * l_tv
        losses = {"content": l_content, "style": l_style, "tv": l_tv}
        if cfg.lambda_tone > 0:
            losses["tone"] = tone_loss(fake.float(), content, cfg.tone_pool)
            loss_g = loss_g + cfg.lambda_tone * losses["tone"]
        if cfg.lambda_warp > 0:
            # the same moves and noise for a given (seed, step): resuming stays exact
            rng = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
            theta = random_small_warps(content.shape[0], generator=rng)
            noise = torch.randn(content.shape, generator=rng).to(self.device) * cfg.warp_noise
            moved = (warp(content, theta) + noise).clamp(0, 1).contiguous(memory_format=self.memory_format)
            with self._autocast():
                fake_of_moved = self._g(moved) if condition is None else self._g(moved, condition)
            losses["warp"] = warp_consistency_loss(fake_of_moved, fake.float(), theta)
            loss_g = loss_g + cfg.lambda_warp * losses["warp"]
        if cfg.lambda_pixel > 0:
            losses["pixel"] = (fake.float() - content).abs().mean()
            loss_g = loss_g + cfg.lambda_pixel * losses["pixel"]
        if adversarial:
            with self._autocast():
                # The unwrapped D: its parameters are frozen, so DDP has nothing to synchronise.
                logits = self.discriminator(fake, labels)
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
            real = style.sampler.batch(step).to(self.device, non_blocking=True, memory_format=self.memory_format)
            n = real.shape[0]
            with self._autocast():   # one pass: both halves, one DDP sync
                logits = self._d(torch.cat([real, fake.detach()]), None if labels is None else torch.cat([labels] * 2))
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
    def train(self, on_step=None) -> Path | None:
        """Run until ``config.steps``; export the EMA generator. Returns ``RUN_DIR/model`` (rank 0).

        ``on_step(trainer)`` is called after every step (e.g. a host's progress bar and previews);
        if it raises, a checkpoint is saved first (the run continues with ``resume=True``) and the
        exception propagates."""
        from tqdm.auto import tqdm

        cfg = self.config
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.run_dir / "options.json", config_to_dict(cfg))
            atomic_write_json(self.run_dir / "run_info.json", run_info(self))
            self.log.open(self.run_dir, self.step)
            logger.info("training %s generator: %d content / %d style images%s, %dpx crops, batch %d×%d, device %s%s, "
                        "step %d → %d", cfg.preset, len(self.content_images),
                        sum(len(s.images) for s in self.styles.styles),
                        f" in a library of {len(self.styles)} styles" if self.styles.library else "", cfg.image_size,
                        cfg.batch_size, self.world_size, self.device, " (bf16 autocast)" if self.amp else "",
                        self.step, cfg.steps)
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not (self.is_main and cfg.progress),
                   desc="ganstyle train", unit="step", dynamic_ncols=True)
        started = time.perf_counter()
        session_start = self.elapsed_s
        # first Ctrl-C: finish the step, checkpoint, stop; a second one aborts (single process only:
        # under torchrun the launcher handles signals)
        stop = StopRequest(enabled=self.world_size == 1).start()
        try:
            while self.step < cfg.steps:
                losses = self.optimize_parameters(self.step)
                self.step += 1
                self.elapsed_s = session_start + time.perf_counter() - started
                self.log.add(losses)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    self.last_losses = row = self.log.average()
                    self.log.write(row, step=self.step, images=self.step * cfg.batch_size * self.world_size,
                                   elapsed_s=self.elapsed_s)
                    shown = ("content", "style", "adv_g", "loss_d")
                    bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k in shown}, refresh=False)
                bar.update(1)
                if cfg.sample_every and self.step % cfg.sample_every == 0:
                    self.save_samples()
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
                if on_step is not None:
                    try:
                        on_step(self)
                    except BaseException:
                        self.save_checkpoint()
                        raise
                if stop.requested:
                    self.save_checkpoint()
                    logger.info("stopped at step %d: checkpoint saved; continue with --resume", self.step)
                    raise KeyboardInterrupt
                if cfg.max_minutes and self._out_of_time(time.perf_counter() - started, cfg.max_minutes):
                    logger.info("stopped at step %d of %d: --max-minutes %g reached", self.step, cfg.steps,
                                cfg.max_minutes)
                    break
        finally:
            stop.restore()
            bar.close()
            self.log.close()
        self.save_checkpoint()
        check_ranks_in_sync(self.weights_fingerprint(), self.world_size, self.device)
        if self.world_size > 1 and self.is_main:
            logger.info("weights identical on all %d ranks", self.world_size)
        model_dir = self.export() if self.is_main else None
        barrier(self.world_size)
        shutdown(self._owns_process_group)
        return model_dir

    # ---- what a run leaves: samples, the exported model -----------------------------------
    def save_samples(self) -> Path | None:
        if not self.is_main or self.config.num_previews == 0:
            return None
        return save_image(sample_grid(self), self.run_dir / "samples" / f"step_{self.step:08d}.png")

    def export(self) -> Path:
        """Write the EMA generator (+ config, model card, sample grid) to ``RUN_DIR/model``."""
        model_dir = self.run_dir / "model"
        dtype = torch.float16 if self.config.export_fp16 else None
        self.ema_generator.save_pretrained(model_dir, dtype=dtype, metadata={
            "ganstyle_steps": str(self.step), "encoder": self.encoder.identity, "preset": self.config.preset})
        save_image(sample_grid(self), model_dir / "samples.png")
        card = model_card(self.run_dir.name, self.ema_generator, training=training_facts(self),
                          images={"samples.png": "samples: style on the first row, then content | stylised"})
        atomic_write_bytes(model_dir / "README.md", card.encode())
        if self.config.base:
            self.export_style_file()
        info = run_info(self)
        info.update(steps=self.step, elapsed_s=round(self.elapsed_s, 1), final_losses=self.last_losses)
        atomic_write_json(self.run_dir / "run_info.json", info)
        logger.info("exported the EMA generator to %s", model_dir)
        return model_dir

    def _out_of_time(self, seconds: float, max_minutes: float) -> bool:
        """Whether this session has trained ``max_minutes``; every rank stops at the same step (the
        slowest rank's clock decides)."""
        late = torch.tensor([float(seconds >= 60.0 * max_minutes)], device=self.device)
        return bool(all_reduce_sum(late, self.world_size).item() > 0)

    def export_style_file(self) -> Path:
        """With ``base``: the new style's norm parameters as a style file in ``RUN_DIR/style``."""
        from .models import load_style_model
        from .style_files import save_style_file

        name = next(iter(self.config.style_info), None) or Path(self.config.style[0].rstrip("/\\")).stem
        record = {"name": name, "source": Path(self.config.style[0]).name,
                  **self.config.style_info.get(name, {})}
        base = load_style_model(self.config.base).generator
        folder = save_style_file(self.ema_generator, self.run_dir / "style", record, base, base_name=self.config.base)
        logger.info("exported the style file '%s' (for --styles-from) to %s", name, folder)
        return folder

    # ---- checkpoints ------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def latest_checkpoint(self) -> Path | None:
        return latest_checkpoint(self.checkpoint_dir)

    def _networks(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator, "ema": self.ema_generator}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"optim_g": self.opt_g, "optim_d": self.opt_d}

    def checkpoint_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, JSON state) of a checkpoint; see :meth:`load_checkpoint`."""
        tensors, optimizers = pack_state(self._networks(), self._optimizers())
        state = {
            "format": CHECKPOINT_FORMAT, "step": self.step, "elapsed_s": self.elapsed_s,
            "world_size": self.world_size, "options": config_to_dict(self.config),
            "optimizers": optimizers, "rng": rng_state(),
            "data": {"content": self.content_sampler.state_dict(),
                     "style": ([s.sampler.state_dict() for s in self.styles.styles] if self.styles.library
                               else self.style_sampler and self.style_sampler.state_dict())},
            "last_losses": self.last_losses,
        }
        return tensors, state

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/step_N`` (atomically) and prune old ones. Only rank 0 writes; the
        other ranks wait for it."""
        path = None
        if self.is_main:
            path = write_checkpoint(self.checkpoint_dir, self.step, self.checkpoint_state,
                                    keep=self.config.keep_checkpoints)
        barrier(self.world_size)
        return path

    def load_checkpoint(self, path: str | os.PathLike | None = None) -> int:
        """Restore everything from a checkpoint folder (default: the newest) and return its step."""
        folder = Path(path) if path is not None else self.latest_checkpoint()
        if folder is None:
            raise WeightsError(f"no checkpoint found in {self.checkpoint_dir}")
        state, tensors = read_checkpoint(folder)
        unpack_state(tensors, state["optimizers"], self._networks(), self._optimizers(), folder / "state.safetensors")
        set_rng_state(state["rng"])
        saved_world = state.get("data", {}).get("content", {}).get("world_size", self.world_size)
        if saved_world != self.world_size:
            warnings.warn(f"resuming a {saved_world}-process run with {self.world_size} process(es): the global "
                          f"batch changes, so the data order is no longer identical to an uninterrupted run",
                          stacklevel=2)
        self.step = int(state["step"])
        self.elapsed_s = float(state.get("elapsed_s", 0.0))
        self.last_losses = dict(state.get("last_losses", {}))
        if self.is_main:
            logger.info("resumed from %s (step %d)", folder, self.step)
        return self.step

    def weights_fingerprint(self) -> str:
        """sha256-based identity of the G, D and EMA weights (identical on every rank when in sync)."""
        return tensors_fingerprint(module_tensors(self._networks()))

