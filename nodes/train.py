"""TrainStyle node: ``ganstyle train`` inside ComfyUI (a thin wrapper over core.trainer)."""
from __future__ import annotations

from pathlib import Path

import torch

from ..core.errors import GanstyleError
from ..core.images import comfy_to_bchw, save_image
from ..core.models import load_style_model
from ..core.training.config import TrainConfig, check_given
from . import comfy_env
from .comfy_env import io
from .encoder import VGGEncoder
from .options import option_inputs, values_from_inputs
from .stylize import StyleModelType

PREVIEW_EVERY = 25   # steps between preview images
# TrainConfig's fields (their bounds); the widgets keep the defaults saved workflows have.
REQUIRED = ("steps",)
OPTIONAL = ("image_size",)
WIDGETS = {"steps": {"default": 500, "step": 50,
                     "tooltip": "Training steps. On a CPU about a second each; on a GPU a few ms."},
           "image_size": {"step": 32, "tooltip": "Training crop size in pixels."}}


class TrainStyle(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TrainStyle", display_name="Train Style (ganstyle)", category=comfy_env.CATEGORY,
            description="Trains a feed-forward style model on your style images (GAN + perceptual losses, as "
                        "'ganstyle train'), with a progress bar and previews. Cancel saves a checkpoint: run it "
                        "again with the same inputs to continue where it stopped.",
            inputs=[
                VGGEncoder.Input("encoder", tooltip="The loss encoder, from Load VGG Encoder (ganstyle)."),
                io.Image.Input("style_images", tooltip="The style: one painting, or several works of one kind (a "
                                                       "batch; all are learnt as one style)."),
                io.String.Input("name", default="my-style", tooltip="The new model's folder in models/style_transfer "
                                                                    "(its training run is kept beside it, as "
                                                                    "NAME.run)."),
                *option_inputs(TrainConfig, REQUIRED, WIDGETS),
                io.Image.Input("content_images", optional=True,
                               tooltip="Photos to learn on (a batch). Or give content_folder."),
                io.String.Input("content_folder", optional=True, default="",
                                tooltip="A folder of photos to learn on (searched recursively), e.g. one made by "
                                        "'ganstyle data photos'."),
                io.String.Input("base", optional=True, default="",
                                tooltip="A style library (registry name or folder): the new style then trains only "
                                        "its own norm parameters on the library's frozen network (fast). Empty: "
                                        "fine-tune the shipped base generator base-fast."),
                *option_inputs(TrainConfig, OPTIONAL, WIDGETS, optional=True),
            ],
            outputs=[StyleModelType.Output(
                "style_model", display_name="style_model",
                tooltip="The trained style model, ready for GAN Stylize (also saved in "
                        "models/style_transfer).")])

    @classmethod
    @comfy_env.reports_user_errors
    def execute(cls, encoder, style_images, name, content_images=None, content_folder="", base="", **inputs):
        settings = values_from_inputs(TrainConfig, REQUIRED + OPTIONAL, inputs, WIDGETS)
        return io.NodeOutput(train_style(encoder, style_images, name, content_images, content_folder, base,
                                         settings))


def train_style(encoder, style_images, name: str, content_images, content_folder: str, base: str, settings: dict):
    """Train Style's run (``settings``: TrainConfig fields): the images written where the trainer
    reads them, training with progress, previews and Cancel, the model published in
    models/style_transfer/NAME; returns that model, loaded."""
    from ..core.trainer import Trainer

    check_given(settings)       # TrainConfig's bounds, before anything is written
    steps = settings["steps"]
    name = name.strip()
    if not name or any(c in name for c in '/\\:') or name.startswith("."):
        raise GanstyleError(f"name '{name}' must be a plain folder name (no slashes)")
    folders = comfy_env.model_dirs("style")
    if not folders:
        raise GanstyleError("no models/style_transfer folder to save the model in")
    target, run = folders[0] / name, folders[0] / f"{name}.run"
    content = _content_source(run, content_images, content_folder)
    style = _write_images(run / "inputs" / "style", style_images)
    init_from, base = _start(base.strip())
    config = TrainConfig(content=content, style=style, out=str(run), **settings, init_from=init_from, base=base,
                         # on a library: the style file's style is `name` (TrainConfig gives it the
                         # new-style defaults)
                         **({"style_info": {name: {}}} if base else {}),
                         encoder=encoder.source or encoder.arch, device=str(comfy_env.torch_device()),
                         sample_every=0, checkpoint_every=100, progress=False)
    with torch.inference_mode(False):   # ComfyUI runs nodes in inference mode; training needs autograd
        trainer = Trainer(config, resume=(run / "options.json").exists(), encoder=encoder)
    bar = comfy_env.Progress(steps)
    preview = comfy_to_bchw(content_images[:1]) if content_images is not None else None

    def on_step(t: Trainer) -> None:
        comfy_env.throw_if_interrupted()    # Cancel: the trainer saves a checkpoint, then stops
        shown = None
        if preview is not None and (t.step % PREVIEW_EVERY == 0 or t.step == steps):
            with torch.no_grad():
                shown = t.ema_generator(preview.to(t.device).clone()).float().cpu()
        bar.update(t.step, shown)

    with torch.inference_mode(False), torch.enable_grad():
        model_dir = trainer.train(on_step=on_step)
    _publish(model_dir, target)
    return load_style_model(str(target), device=comfy_env.offload_device(), dtype=torch.float32)


def _start(base: str) -> tuple[str, str]:
    """(init_from, base) of the run: a new style on a library, or fine-tuning the shipped base."""
    return ("", base) if base else ("base-fast", "")


def _write_images(folder: Path, images: torch.Tensor) -> str:
    """An IMAGE batch → PNG files in ``folder`` (replaced), for the trainer's file-based data."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    for i, image in enumerate(comfy_to_bchw(images)):
        save_image(image, folder / f"{i:04d}.png")
    return str(folder)


def _content_source(run: Path, content_images, content_folder: str) -> str:
    if content_images is not None:
        return _write_images(run / "inputs" / "content", content_images)
    if content_folder.strip():
        folder = Path(content_folder.strip()).expanduser()
        if not folder.is_dir():
            raise GanstyleError(f"content_folder {folder} is not a folder")
        return str(folder)
    raise GanstyleError("give photos to learn on: connect content_images or set content_folder")


def _publish(model_dir: Path, target: Path) -> None:
    """Copy the exported model (weights, config, card, samples) to ``target`` (replacing it)."""
    import shutil

    from ..core.io import atomic_write_bytes

    target.mkdir(parents=True, exist_ok=True)
    for item in model_dir.iterdir():
        if item.is_file():
            atomic_write_bytes(target / item.name, item.read_bytes())
    style_file = model_dir.parent / "style"
    if style_file.is_dir():                     # trained on a library: its style file too
        shutil.copytree(style_file, target / "style", dirs_exist_ok=True)


NODES = [TrainStyle]
