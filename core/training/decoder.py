"""Training the encoder–decoder's decoders (:mod:`ganstyle.core.decoder`), one explicit loop.

Stage ``reconstruct``: each decoder learns to invert its VGG layer on photos and paintings
(pixel L1 + relative feature loss at every VGG level up to its own). Nothing here depends on a
painting's style, which is why a decoder trained this way works for any painting (Li et al. 2017).

Stage ``style`` (fine-tuning from a reconstruct run with ``init_from``): the coarsest decoder takes
photo features fused with a training painting's statistics and learns to paint them: content
(relative error against the fused features) + Gram style against the painting at relu1_1 … relu5_1
+ adversarial (a PatchGAN telling paintings from results) + total variation.

A run folder holds ``options.json``, ``log.jsonl``, ``samples/step_N.jpg``, ``checkpoints/step_N/``
(exact resume: weights, Adam moments, RNG; batches are a function of the step) and ``model/`` (the
exported model, refreshed at every checkpoint). Ctrl-C or SIGTERM stops after the current step
with a checkpoint; a second one aborts.
"""
from __future__ import annotations

import json
import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import bounded, config_from_dict, config_to_dict
from ..data import CropSampler, load_image_set
from ..decoder import DECODER_LEVELS, EncoderDecoder, new_encoder_decoder
from ..discriminator import DiscriminatorConfig, PatchDiscriminator
from ..errors import InputError
from ..fusion import MODEL_FUSIONS
from ..images import image_grid, save_image
from ..io import atomic_write_json
from ..losses import adversarial_loss
from ..vgg import load_vgg_encoder
from .checkpoint import (
    latest_checkpoint,
    pack_state,
    read_checkpoint,
    rng_state,
    seed_everything,
    set_rng_state,
    unpack_state,
    write_checkpoint,
)
from .decoder_losses import (
    fit_linear_decoder,
    fused_targets,
    is_linear,
    reconstruction_loss,
    scale_initial_weights,
    style_losses,
    taps_up_to,
)
from .stopping import StopRequest

logger = logging.getLogger(__name__)
STAGES = ("reconstruct", "style")


@dataclass(kw_only=True)
class DecoderTrainConfig:
    """Every option of a decoder training run; saved as ``options.json``."""
    content: tuple[str, ...] = bounded((), doc="folder(s) or files of photos to reconstruct / stylise")
    paintings: tuple[str, ...] = bounded((), doc="folder(s) or files of paintings: reconstructed too in stage "
                                                 "reconstruct; the styles of stage style")
    out: str = bounded("", doc="run folder (options, log, samples, checkpoints, exported model/)")
    stage: str = bounded("reconstruct", choices=STAGES, doc="reconstruct: learn to invert VGG layers (any "
                         "painting works afterwards); style: fine-tune the coarsest decoder with style and "
                         "adversarial losses from a reconstruct run (--init-from)")
    init_from: str = bounded("", doc="a model folder to start from (stage style: the reconstruct run's model/)")
    encoder: str = bounded("vgg16-hed", doc="the VGG to invert (registry name, Hub repo or file)")
    levels: tuple[str, ...] = bounded(("relu3_1", "relu2_1", "relu1_1"), doc="layers to decode, coarse to fine")
    train_levels: tuple[str, ...] = bounded((), doc="the decoders this run trains (default: every level in stage "
                                                    "reconstruct, the coarsest in stage style); the others keep "
                                                    "their weights")
    fusion: str = bounded("wct", choices=MODEL_FUSIONS, doc="the model's fusion at inference (and in stage style)")
    full_channels: int = bounded(32, 4, 64, doc="channels of the decoders' last full-resolution convolution")
    steps: int = bounded(4000, 1, 10_000_000, doc="total optimisation steps")
    max_minutes: float = bounded(0.0, 0.0, 1e6, doc="stop (with a checkpoint) after this many minutes; 0: no limit")
    image_size: int = bounded(256, 32, 2048, doc="training crop size in pixels")
    content_size: int = bounded(512, 32, 4096, doc="images are decoded once with this short side")
    crop_scale_min: float = bounded(0.5, 0.05, 1.0, doc="crops cover between image_size and image_size/this "
                                                         "source pixels (several scales of a scene)")
    batch_size: int = bounded(4, 1, 256, doc="images per step")
    lr: float = bounded(3e-4, 1e-7, 1.0, doc="Adam learning rate of the decoders")
    lambda_pixel: float = bounded(1.0, 0.0, 1e6, doc="weight of the pixel L1 loss (stage reconstruct)")
    lambda_feature: float = bounded(1.0, 0.0, 1e6, doc="weight of the relative VGG feature loss (reconstruct)")
    lambda_content: float = bounded(1.0, 0.0, 1e6, doc="stage style: weight of the content loss")
    lambda_style: float = bounded(1.0, 0.0, 1e6, doc="stage style: weight of the Gram style loss")
    lambda_adv: float = bounded(0.05, 0.0, 1e6, doc="stage style: weight of the adversarial loss")
    lambda_tv: float = bounded(1.0, 0.0, 1e6, doc="stage style: weight of the total-variation loss")
    seed: int = bounded(0, 0, 2**31 - 1, doc="random seed (data order, initial weights)")
    log_every: int = bounded(20, 1, 1_000_000, doc="steps between log lines")
    sample_every: int = bounded(200, 1, 1_000_000, doc="steps between sample grids")
    checkpoint_every: int = bounded(200, 1, 1_000_000, doc="steps between checkpoints (and model exports)")
    progress: bool = bounded(True, doc="show a progress bar")

    def validate(self) -> None:
        bad = [lv for lv in self.levels if lv not in DECODER_LEVELS]
        bad += [lv for lv in self.train_levels if lv not in self.levels]
        if bad:
            raise ValueError(f"levels {bad} cannot be decoded; choose from {list(DECODER_LEVELS)}")
        if self.stage == "style" and not self.init_from:
            raise ValueError("stage style fine-tunes a trained decoder: give init_from (a reconstruct run's model)")


class DecoderTrainer:
    """Trains the decoders of an :class:`EncoderDecoder`; see the module docstring."""

    def __init__(self, config: DecoderTrainConfig, *, resume: bool = False):
        config.validate()
        self.config = config
        self.out = Path(config.out)
        self.device = torch.device("cpu") if not torch.cuda.is_available() else torch.device("cuda")
        seed_everything(config.seed)
        if config.init_from:
            self.model = EncoderDecoder.from_pretrained(config.init_from, device=self.device)
            self.model.config.fusion = config.fusion
        else:
            # the whole encoder: its identity (recorded as the model's style encoder) is that of the
            # Style Features users measure with it; the model keeps only the layers it needs
            encoder = load_vgg_encoder(config.encoder, device=self.device)
            self.model = new_encoder_decoder(encoder, config.levels, fusion=config.fusion,
                                             full_channels=config.full_channels).to(self.device)
        self.model.decoders.requires_grad_(True).train()
        trained = self.trained_levels()
        # a linear decoder (relu1_1's) is solved in closed form (fit_linear_decoder), not stepped: Adam's
        # fixed-size steps would throw away its least-squares solution
        stepped = [lv for lv in trained if not is_linear(self.model, lv)]
        params = [p for lv in stepped for p in self.model.decoders[lv].parameters()]
        self.optimizer = torch.optim.Adam(params or [torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
        self.closed_form_only = not params
        sources = list(config.content) + (list(config.paintings) if config.stage == "reconstruct" else [])
        if not sources:
            raise InputError("no training images: give content photos (and paintings)")
        self.images = load_image_set(sources, what="training images", short_side=config.content_size,
                                     min_short_side=config.image_size)
        self.sampler = CropSampler(self.images, config.image_size, config.batch_size, seed=config.seed,
                                   stream="decoder", scale_min=config.crop_scale_min)
        self.modules: dict[str, torch.nn.Module] = {"decoders": self.model.decoders}
        self.optimizers: dict[str, torch.optim.Optimizer] = {"adam": self.optimizer}
        if config.stage == "style":
            if not config.paintings:
                raise InputError("stage style needs paintings (--paintings)")
            paintings = load_image_set(list(config.paintings), what="paintings", short_side=config.content_size,
                                       min_short_side=config.image_size)
            self.painting_sampler = CropSampler(paintings, config.image_size, config.batch_size, seed=config.seed,
                                                stream="paintings", scale_min=config.crop_scale_min)
            self.discriminator = PatchDiscriminator(DiscriminatorConfig(base_channels=32)).to(self.device)
            self.modules["discriminator"] = self.discriminator
            self.optimizers["adam_d"] = torch.optim.Adam(self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.previews = self.sampler_preview()
        self.step = 0
        self.out.mkdir(parents=True, exist_ok=True)
        if resume:
            self.load_latest()
        elif config.stage == "reconstruct":   # a linear decoder starts at its least-squares solution,
            fit = CropSampler(self.images, config.image_size, 8, seed=config.seed, stream="linear-fit").batch(0)
            for level in self.trained_levels():   # a fresh deeper one at data-scaled weights
                if not fit_linear_decoder(self.model, level, fit.to(self.device)) and not config.init_from:
                    scale_initial_weights(self.model, level, fit[:4].to(self.device))
        atomic_write_json(self.out / "options.json", config_to_dict(config))

    def trained_levels(self) -> list[str]:
        """Coarse to fine, as in ``levels``."""
        if self.config.train_levels:
            return [lv for lv in self.config.levels if lv in self.config.train_levels]
        return list(self.config.levels) if self.config.stage == "reconstruct" else [self.config.levels[0]]

    def sampler_preview(self) -> torch.Tensor:
        fixed = CropSampler(self.images, self.config.image_size, 4, seed=self.config.seed + 1, stream="preview")
        return fixed.batch(0)

    # -- one step ---------------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        if self.config.stage == "style":
            return self.style_step()
        images = self.sampler.batch(self.step).to(self.device)
        trained = self.trained_levels()
        with torch.no_grad():
            targets = self.model.encoder(images, taps_up_to(trained[0]))
        self.optimizer.zero_grad(set_to_none=True)
        figures: dict[str, float] = {}
        total = 0.0
        for level in trained:
            if is_linear(self.model, level):
                continue
            loss, fig = reconstruction_loss(self.model, images, level, targets, self.config.lambda_pixel,
                                            self.config.lambda_feature)
            loss.backward()   # per level: frees that level's graph before the next one is built
            total += loss.item()
            figures.update(fig)
        self.optimizer.step()
        figures["loss"] = total
        return figures

    def style_step(self) -> dict[str, float]:
        """Stage style: generator (decoder) step, then discriminator step on the detached result."""
        cfg, level = self.config, self.config.levels[0]
        photos = self.sampler.batch(self.step).to(self.device)
        paintings = self.painting_sampler.batch(self.step).to(self.device)
        fused, grams = fused_targets(self.model, photos, paintings, level)
        out = self.model.decoders[level](fused)
        terms = style_losses(self.model, out, fused, grams, level)
        self.discriminator.requires_grad_(False)
        terms["adv_g"] = sum(adversarial_loss(o, True, for_discriminator=False) for o in self.discriminator(out))
        loss = (cfg.lambda_content * terms["content"] + cfg.lambda_style * terms["style"]
                + cfg.lambda_tv * terms["tv"] + cfg.lambda_adv * terms["adv_g"])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.discriminator.requires_grad_(True)
        fake = out.detach().clamp(0, 1)
        loss_d = sum(adversarial_loss(o, True) for o in self.discriminator(paintings)) + \
            sum(adversarial_loss(o, False) for o in self.discriminator(fake))
        self.optimizers["adam_d"].zero_grad(set_to_none=True)
        loss_d.backward()
        self.optimizers["adam_d"].step()
        return {"loss": loss.item(), "loss_d": loss_d.item(), **{k: v.item() for k, v in terms.items()}}

    # -- the loop -----------------------------------------------------------------------------------
    def train(self) -> Path:
        from tqdm.auto import tqdm

        cfg = self.config
        if self.closed_form_only:   # only linear decoders, solved at the start: nothing to step
            self.save_checkpoint()
            return self.out / "model"
        start = time.monotonic()
        sums: dict[str, float] = {}
        count = 0
        # Ctrl-C or `kill` (a run in the background ignores SIGINT): finish the step, checkpoint, stop
        stop = StopRequest((signal.SIGINT, signal.SIGTERM)).start()
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not cfg.progress, desc="decoder", unit="step")
        try:
            while self.step < cfg.steps:
                figures = self.train_step()
                self.step += 1
                bar.update(1)
                for k, v in figures.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                if self.step % cfg.log_every == 0:
                    row = {"step": self.step, **{k: round(v / count, 5) for k, v in sums.items()},
                           "minutes": round((time.monotonic() - start) / 60, 2)}
                    with open(self.out / "log.jsonl", "a") as f:
                        f.write(json.dumps(row) + "\n")
                    bar.set_postfix(loss=f"{row['loss']:.3f}")
                    sums, count = {}, 0
                if self.step % cfg.sample_every == 0:
                    self.save_samples()
                if self.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
                if stop.requested:
                    self.save_checkpoint()
                    logger.info("stopped at step %d: checkpoint saved; continue with --resume", self.step)
                    raise KeyboardInterrupt
                if cfg.max_minutes and time.monotonic() - start > cfg.max_minutes * 60:
                    logger.info("time limit of %s minutes reached at step %d", cfg.max_minutes, self.step)
                    break
        finally:
            bar.close()
            stop.restore()
        self.save_checkpoint()
        return self.out / "model"

    # -- files --------------------------------------------------------------------------------------
    def save_samples(self) -> None:
        self.model.decoders.eval()
        with torch.no_grad():
            x = self.previews.to(self.device)
            rows = [[img[None] for img in x]]
            if self.config.stage == "style":   # photo / painting / the coarsest level's painting of it
                paintings = self.painting_sampler.batch(0).to(self.device)[: len(x)]
                fused, _ = fused_targets(self.model, x[: len(paintings)], paintings, self.config.levels[0])
                out = self.model.decoders[self.config.levels[0]](fused)
                rows += [[img[None] for img in paintings], [img[None].clamp(0, 1) for img in out]]
            for level in self.config.levels if self.config.stage == "reconstruct" else ():
                rows.append([img[None].clamp(0, 1) for img in self.model.reconstruct(x, level)])
        self.model.decoders.train()
        (self.out / "samples").mkdir(exist_ok=True)
        save_image(image_grid(rows, height=self.config.image_size), self.out / "samples" / f"step_{self.step:08d}.jpg")

    def save_checkpoint(self) -> None:
        def contents():
            tensors, described = pack_state(self.modules, self.optimizers)
            return tensors, {"format": 1, "step": self.step, "optimizers": described, "rng": rng_state(),
                             "sampler": self.sampler.state_dict(), "options": config_to_dict(self.config)}
        write_checkpoint(self.out / "checkpoints", self.step, contents, keep=2)
        self.model.eval()
        self.model.save_pretrained(self.out / "model")
        self.model.decoders.train()

    def load_latest(self) -> None:
        found = latest_checkpoint(self.out / "checkpoints")
        if found is None:
            raise InputError(f"nothing to resume in {self.out}: no checkpoint in {self.out / 'checkpoints'}")
        state, tensors = read_checkpoint(found)
        unpack_state(tensors, state["optimizers"], self.modules, self.optimizers, found)
        set_rng_state(state["rng"])
        self.step = int(state["step"])


def run_options(given: dict, resume: bool = False) -> DecoderTrainConfig:
    """The checked options of a run: the defaults (or, resuming, the run's ``options.json``) with
    ``given`` on top; every bound checked (:func:`~ganstyle.core.config.config_from_dict`)."""
    data = config_to_dict(DecoderTrainConfig())
    source = "options"
    if resume:
        path = Path(given.get("out", "")) / "options.json"
        if not path.is_file():
            raise InputError(f"no run to resume in {given.get('out')} (no options.json)")
        data, source = json.loads(path.read_text()), str(path)
    return config_from_dict(DecoderTrainConfig, {**data, **given}, source=source)

