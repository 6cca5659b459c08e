"""The only place that talks to ComfyUI. Each helper falls back to plain behaviour when ComfyUI is
not installed (tests, library use), so the pack always imports."""
from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from ..core.device import default_device
from ..core.errors import GanstyleError

CATEGORY = "style_transfer"
MODEL_FOLDERS = {"vgg": "vgg", "style": "style_transfer"}


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
    """ComfyUI progress bar (with optional preview images) or nothing outside ComfyUI."""

    def __init__(self, total: int):
        self.total = max(1, int(total))
        try:
            import comfy.utils  # type: ignore
            self._bar = comfy.utils.ProgressBar(self.total)
        except ImportError:
            self._bar = None

    def update(self, value: int, preview: torch.Tensor | None = None) -> None:
        if self._bar is None:
            return
        pil = None
        if preview is not None:
            from ..core.images import to_pil
            pil = ("JPEG", to_pil(preview), 512)
        self._bar.update_absolute(value, self.total, pil)


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
