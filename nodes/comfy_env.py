"""The only place that talks to ComfyUI. Each helper falls back to plain behaviour when ComfyUI is
not installed (tests, library use), so the pack always imports.

``io`` is the node schema the nodes are written in: ComfyUI's V3 schema (``comfy_api.latest``) where
ComfyUI has it (``V3``), else :mod:`.v1_schema`, a stand-in with the same names whose nodes an
older ComfyUI loads as V1 nodes."""
from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import torch

from ..core.device import default_device
from ..core.errors import GanstyleError

try:    # ComfyUI with the V3 node schema; `latest` is where its docs point custom nodes
    from comfy_api.latest import ComfyExtension, io  # type: ignore  # noqa: F401 - the nodes' schema
    V3 = True
except ImportError:     # an older ComfyUI (V1 nodes only), or none
    from . import v1_schema as io  # noqa: F401 - the nodes' schema
    ComfyExtension, V3 = None, False

CATEGORY = "style_transfer"
MODEL_FOLDERS = {"vgg": "vgg", "style": "style_transfer"}
# Progress previews are sent at their own size, shrunk to at most this long side (never enlarged:
# ComfyUI would otherwise scale a small image up to it and show it larger than the result).
PREVIEW_MAX_SIDE = 512
# The pack's sample images (weights/samples) and the names they get in ComfyUI's input folder,
# where the example workflows' Load Image nodes find them.
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "weights" / "samples"
SAMPLE_IMAGES = {"ganstyle_photo.jpg": "photo.jpg", "ganstyle_painting.jpg": "painting.jpg",
                 "ganstyle_painting2.jpg": "painting2.jpg",
                 "ganstyle_mask.png": "mask.png", "ganstyle_clip.mp4": "clip.mp4"}

logger = logging.getLogger(__name__)


def _folder_paths():
    try:
        import folder_paths  # type: ignore
        return folder_paths
    except ImportError:
        return None


def _model_management():
    try:
        import comfy.model_management as mm  # type: ignore
        return mm
    except ImportError:
        return None


def register_model_folders() -> None:
    """Make ComfyUI know ``models/vgg`` and ``models/style_transfer`` (extra_model_paths.yaml works)."""
    fp = _folder_paths()
    if fp is None:
        return
    for name in MODEL_FOLDERS.values():
        if name not in fp.folder_names_and_paths:
            path = os.path.join(fp.models_dir, name)
            fp.folder_names_and_paths[name] = ([path], {".safetensors", ".json"} if name != "vgg" else {".safetensors"})


def model_dirs(kind: str) -> list[Path]:
    """Folders to search for local weights of ``kind`` ("vgg" or "style")."""
    fp = _folder_paths()
    if fp is None:
        env = os.environ.get("GANSTYLE_MODELS_DIR")
        return [Path(env) / MODEL_FOLDERS[kind]] if env else []
    register_model_folders()
    return [Path(p) for p in fp.get_folder_paths(MODEL_FOLDERS[kind])]


def find_in_model_dirs(kind: str, name: str) -> Path:
    """``name`` in the models folders of ``kind`` (the first that has it), or ``name`` itself as a
    path; a missing one is an error naming where it was looked for."""
    from ..core.errors import InputError

    for folder in model_dirs(kind):
        if (folder / name).exists():
            return folder / name
    if Path(name).expanduser().exists():
        return Path(name).expanduser()
    looked = ", ".join(str(f) for f in model_dirs(kind)) or "(no models folder)"
    raise InputError(f"'{name}' not found in {looked}, nor as a path")


def find_style_file(name: str) -> str | Path:
    """A style file named in styles_from: a folder in the style models folders or a path, else
    ``name`` itself when it reads as a Hub repo 'org/name[@revision]' (fetched into the cache)."""
    from ..core.errors import InputError
    from ..core.hub import parse_hub_ref

    try:
        return find_in_model_dirs("style", name)
    except InputError:
        parsed = parse_hub_ref(name)
        if parsed is not None and not parsed[1]:
            return name
        raise


def list_local(kind: str) -> list[str]:
    """Local model file (vgg) or folder (style) names, relative to the models folders."""
    names = set()
    for folder in model_dirs(kind):
        if not folder.is_dir():
            continue
        if kind == "vgg":
            names.update(p.name for p in folder.glob("*.safetensors"))
        else:
            names.update(p.name for p in folder.iterdir() if (p / "model.safetensors").is_file())
    return sorted(names)


def hub_cache_dir() -> Path | None:
    """Inside ComfyUI, Hub downloads go under ``models/style_transfer/hub`` rather than ~/.cache."""
    fp = _folder_paths()
    if fp is None:
        return None
    return Path(fp.models_dir) / MODEL_FOLDERS["style"] / "hub"


def install_sample_images() -> list[Path]:
    """Copy the sample images into ComfyUI's input folder (``ganstyle_*.jpg``) so the example
    workflows open and run as shipped. A file already there is never overwritten. Never raises
    (it runs while ComfyUI imports the pack); returns the files it wrote."""
    written = []
    try:
        fp = _folder_paths()
        if fp is None or not hasattr(fp, "get_input_directory"):
            return written
        input_dir = Path(fp.get_input_directory())
        for name, sample in SAMPLE_IMAGES.items():
            source, target = SAMPLES_DIR / sample, input_dir / name
            if target.exists() or not source.is_file():
                continue
            input_dir.mkdir(parents=True, exist_ok=True)
            data = source.read_bytes()
            try:
                with open(target, "xb") as f:   # exclusive: never replaces a file made meanwhile
                    f.write(data)
            except FileExistsError:
                continue
            written.append(target)
    except Exception as e:  # a read-only or odd input folder must not stop the pack from loading
        logger.warning("ganstyle: could not copy the sample images into ComfyUI's input folder (%s); "
                       "the example workflows will ask for ganstyle_*.jpg", e)
    return written


def torch_device() -> torch.device:
    mm = _model_management()
    return mm.get_torch_device() if mm is not None else default_device()


def offload_device() -> torch.device:
    mm = _model_management()
    return mm.unet_offload_device() if mm is not None else torch.device("cpu")


def throw_if_interrupted() -> None:
    """Raise ComfyUI's interrupt exception when the user pressed Cancel."""
    mm = _model_management()
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()


class Progress:
    """ComfyUI's progress bar of the running node (with optional preview images): through the V3
    progress API (``ComfyAPISync().execution.set_progress``) where ComfyUI has it, else the V1
    ``comfy.utils.ProgressBar``; nothing outside ComfyUI or outside a running node."""

    def __init__(self, total: int):
        self.total = max(1, int(total))
        self._execution = self._bar = None
        try:
            from comfy_api.latest import ComfyAPISync  # type: ignore
            self._execution = ComfyAPISync().execution
        except ImportError:
            try:
                import comfy.utils  # type: ignore
                self._bar = comfy.utils.ProgressBar(self.total)
            except ImportError:
                pass

    def update(self, value: int, preview: torch.Tensor | None = None) -> None:
        if self._execution is not None:
            image = None if preview is None else preview_image(preview)[1]
            try:    # shown at its own size (already at most PREVIEW_MAX_SIDE): never enlarged
                self._execution.set_progress(value, self.total, preview_image=image, ignore_size_limit=True)
            except ValueError:   # not inside a running node (no node to report to): stay quiet
                self._execution = None
        elif self._bar is not None:
            self._bar.update_absolute(value, self.total, None if preview is None else preview_image(preview))


def preview_image(preview: torch.Tensor) -> tuple:
    """ComfyUI's ``(format, PIL image, max_size)`` preview for a (1, 3, h, w) image: its own size,
    shrunk to a long side of at most :data:`PREVIEW_MAX_SIDE`, and ``max_size`` = that long side,
    so ComfyUI never scales it up (it would enlarge a small preview to ``max_size``)."""
    from PIL import Image

    from ..core.images import to_pil
    pil = to_pil(preview)
    pil.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE), Image.Resampling.BILINEAR)   # only shrinks
    return "JPEG", pil, max(pil.size)


def user_error(e: Exception) -> Exception:
    """Turn our own input errors into a short message for the ComfyUI UI (the original is chained)."""
    if isinstance(e, GanstyleError):
        return ValueError(f"[ganstyle] {e}")
    return e


def reports_user_errors(method):
    """Decorator for node functions: our own input errors (:class:`GanstyleError`) reach the
    ComfyUI UI as a one-line ``[ganstyle] …`` message (see :func:`user_error`)."""
    @functools.wraps(method)
    def node_function(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except GanstyleError as e:
            raise user_error(e) from e
    return node_function
