"""Style models by reference: registry name, Hub repo, local folder or file, ComfyUI models folder.

A style model is ``model.safetensors`` + ``config.json`` (a :class:`GeneratorConfig`). References,
tried in this order:

1. a registry entry of kind ``"style"`` in ``weights/registry.json``: a shipped ``path`` (folder or
   file, relative to ``weights/``) or a Hub ``repo_id`` (+ ``revision``, ``sha256``);
2. a local ``.safetensors`` file; its config is ``<name>.json`` beside it, else ``config.json``;
3. a local folder holding ``model.safetensors`` + ``config.json``, or a training run folder (its
   exported ``model/`` subfolder is used, as by ``ganstyle push``);
4. a file or folder name inside one of ``search_dirs`` (ComfyUI's ``models/style_transfer``);
5. a Hub repo ``org/name[/subfolder][@revision]``: both files are downloaded into the Hugging
   Face cache (``cache_dir``), or read from it when ``HF_HUB_OFFLINE=1``.

The config is validated strictly (unknown or missing fields are named) and the weights are read
with safetensors: nothing in a model is executed.

Loaded models are cached in-process by (weights file, config file, their modification times,
device, dtype), so ComfyUI re-running a workflow does not re-read the file. Cached models are
shared and must be treated as read-only; :func:`~ganstyle.core.stylize.stylize` never changes them.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import ConfigError, WeightsError
from .generator import StyleGenerator
from .hub import load_registry, resolve_weights
from .io import PICKLE_SUFFIXES

logger = logging.getLogger(__name__)

CACHE_SIZE = 4


@dataclass(frozen=True)
class StyleModel:
    """A loaded style model (the nodes' ``GANSTYLE_MODEL``): the generator (eval, frozen) and where it
    came from. Read-only: stylising never modifies it."""
    generator: StyleGenerator
    name: str
    source: str
    weights_path: Path
    config_path: Path
    license: str | None = None

    @property
    def config(self):
        return self.generator.config

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.generator.parameters()).dtype

    def __repr__(self) -> str:
        return (f"StyleModel({self.name!r}, preset={self.config.preset!r}, source={self.source!r}, "
                f"device={self.device}, dtype={self.dtype})")


@dataclass(frozen=True)
class StyleModelFiles:
    weights_path: Path
    config_path: Path
    source: str
    license: str | None = None


def locate_style_model(ref: str, *, cache_dir: str | Path | None = None,
                       search_dirs: Sequence[str | Path] = (), registry: dict | None = None) -> StyleModelFiles:
    """Resolve a reference to local weights + config files (downloading from the Hub if needed)."""
    if not isinstance(ref, str) or not ref.strip():
        raise WeightsError(f"empty style model reference {ref!r}: give a registry name, a folder, a "
                           f".safetensors file or a Hub repo id 'org/name[@revision]'")
    ref = ref.strip()
    registry = load_registry() if registry is None else registry
    if ref not in registry:
        # Files are handled here: the generic resolver maps a file to its folder and would lose
        # the file name (ComfyUI users keep several 'name.safetensors' + 'name.json' side by side).
        for candidate in [Path(os.path.expanduser(ref)), *(Path(d) / ref for d in search_dirs)]:
            if candidate.is_file():
                return StyleModelFiles(*_file_pair(candidate), source=str(candidate))
            exported = candidate / "model"
            if (candidate.is_dir() and not (candidate / "model.safetensors").exists()
                    and (exported / "model.safetensors").is_file()):
                # a training run folder (as `ganstyle push` accepts): its exported model is RUN_DIR/model
                return locate_style_model(str(exported), registry={})
    resolved = resolve_weights(ref, kind="style", cache_dir=cache_dir, search_dirs=search_dirs, registry=registry)
    if resolved.path.is_file():
        weights, config = _file_pair(resolved.path)
    else:
        weights, config = resolved.path / "model.safetensors", resolved.path / "config.json"
        if not weights.is_file():
            raise WeightsError(f"{resolved.path}: no model.safetensors in this folder (a style model folder "
                               f"holds model.safetensors and config.json)")
        if not config.is_file():
            raise ConfigError(f"{resolved.path}: no config.json in this folder (a style model folder holds "
                              f"model.safetensors and config.json)")
    return StyleModelFiles(weights, config, resolved.source, resolved.license)


def _file_pair(path: Path) -> tuple[Path, Path]:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise WeightsError(f"{path}: '{path.suffix}' files are PyTorch pickles, which ganstyle never loads "
                           f"(unpickling can run code); convert to .safetensors")
    if path.suffix.lower() == ".json":
        raise WeightsError(f"{path}: this is a config; give the .safetensors file or its folder instead")
    for config in (path.with_suffix(".json"), path.parent / "config.json"):
        if config.is_file():
            return path, config
    raise ConfigError(f"{path}: no config for these weights. A style model is two files: the weights and the "
                      f"config.json describing its generator, published beside model.safetensors (same Hub repo "
                      f"or model folder; `ganstyle train` writes both to RUN_DIR/model). {_config_advice(path)}")


def _config_advice(path: Path) -> str:
    """Where the config.json of a lone weights file comes from and where it goes."""
    beside = f"put it beside the file as {path.parent / 'config.json'} (or as {path.with_suffix('.json')})"
    # a file of the Hugging Face cache: …/models--org--name/snapshots/<commit>/[sub/]model.safetensors
    parts = path.parts
    if "snapshots" in parts:
        i = parts.index("snapshots")
        if i >= 1 and parts[i - 1].startswith("models--") and i + 2 < len(parts):
            repo_id = parts[i - 1][len("models--"):].replace("--", "/")
            sub = "/".join(parts[i + 2:-1])
            url = f"https://huggingface.co/{repo_id}/blob/{parts[i + 1]}/{sub + '/' if sub else ''}config.json"
            return (f"Download {url} and {beside}, or pass the Hub repo '{repo_id}' instead, which fetches "
                    f"both files.")
    return f"Download the config.json from where you got {path.name} and {beside}."


_cache: OrderedDict[tuple, StyleGenerator] = OrderedDict()  # generators only: names differ per reference
_cache_lock = threading.Lock()


def load_style_model(ref: str, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                     cache_dir: str | Path | None = None, search_dirs: Sequence[str | Path] = (),
                     registry: dict | None = None, use_cache: bool = True) -> StyleModel:
    """Load a style model by reference (see the module docstring) onto ``device``/``dtype``."""
    files = locate_style_model(ref, cache_dir=cache_dir, search_dirs=search_dirs, registry=registry)
    device = torch.device(device)
    generator = _cached_generator(files, device, dtype) if use_cache else None
    if generator is None:
        generator = model_class(files.config_path).from_files(files.weights_path, files.config_path, device=device,
                                                              dtype=dtype)
        if use_cache:
            _remember(files, device, dtype, generator)
    return StyleModel(generator, _display_name(ref, files), files.source, files.weights_path,
                      files.config_path, files.license)


def model_class(config_path: Path):
    """The model class a ``config.json`` describes: :class:`StyleGenerator` (``GeneratorConfig``) or
    :class:`~ganstyle.core.decoder.EncoderDecoder` (``EncoderDecoderConfig``)."""
    from .decoder import EncoderDecoder

    try:
        name = json.loads(Path(config_path).read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError):
        name = None   # the strict loader reports what is wrong with the file
    return EncoderDecoder if name == "EncoderDecoderConfig" else StyleGenerator


MODEL_KINDS = ("single style", "style library", "arbitrary style", "encoder-decoder")


def model_kind(model) -> str:
    """Which of :data:`MODEL_KINDS` a loaded model (or its generator) is: what style it takes."""
    from .decoder import EncoderDecoder

    generator = getattr(model, "generator", model)
    if isinstance(generator, EncoderDecoder):
        return "encoder-decoder"
    if generator.config.style_embedding:
        return "arbitrary style"
    return "style library" if generator.config.num_styles else "single style"


def takes_style_features(model) -> bool:
    """Whether the model is driven by a painting's Style Features (any style in one pass)."""
    return model_kind(model) in ("arbitrary style", "encoder-decoder")


def _cache_key(files: StyleModelFiles, device: torch.device, dtype: torch.dtype) -> tuple:
    ws, cs = files.weights_path.stat(), files.config_path.stat()
    return (str(files.weights_path.resolve()), ws.st_mtime_ns, ws.st_size,
            str(files.config_path.resolve()), cs.st_mtime_ns, str(device), dtype)


def _cached_generator(files, device, dtype) -> StyleGenerator | None:
    key = _cache_key(files, device, dtype)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    return None


def _remember(files, device, dtype, generator: StyleGenerator) -> None:
    with _cache_lock:
        _cache[_cache_key(files, device, dtype)] = generator
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _display_name(ref: str, files: StyleModelFiles) -> str:
    if files.weights_path.name != "model.safetensors":
        return files.weights_path.stem
    return ref.strip().rstrip("/").split("@")[0].rsplit("/", 1)[-1] or files.weights_path.parent.name


# ---- listings (ComfyUI dropdown, `ganstyle models`) ------------------------------------------------
def default_style_model(registry: dict | None = None) -> str | None:
    """The registry's default style entry: the one marked ``"default": true``, else the first."""
    registry = load_registry() if registry is None else registry
    names = [k for k, v in registry.items() if v.get("kind") == "style"]
    marked = [k for k in names if registry[k].get("default")]
    return (marked or names or [None])[0]


def default_any_style_model(registry: dict | None = None) -> str | None:
    """The registry's default model for any painting (a style entry marked ``"any_style": true``),
    else the first arbitrary-style entry."""
    registry = load_registry() if registry is None else registry
    names = [k for k, v in registry.items() if v.get("kind") == "style"]
    return next((k for k in names if registry[k].get("any_style")), None) or \
        next((k for k in names if "arbitrary" in k), None)


def with_added_styles(model: StyleModel, refs: Sequence[str | Path], *, cache_dir: str | Path | None = None
                      ) -> StyleModel:
    """``model`` (a style library) with the style files ``refs`` appended (folders, training run
    folders or Hub repos: :func:`ganstyle.core.style_files.locate_style_file`; then
    :func:`~ganstyle.core.style_files.add_styles`); the loaded model itself is not changed."""
    import dataclasses

    from .style_files import add_styles, locate_style_file

    if not refs:
        return model
    folders = [locate_style_file(ref, cache_dir=cache_dir) for ref in refs]
    added = ", ".join(str(ref).rstrip("/").rsplit("/", 1)[-1] for ref in refs)
    return dataclasses.replace(model, generator=add_styles(model.generator, folders),
                               name=f"{model.name} + {added}")


def default_style_library(registry: dict | None = None) -> str | None:
    """The registry's first style library (a style entry marked ``"library": true``), or None."""
    registry = load_registry() if registry is None else registry
    return next((k for k, v in registry.items() if v.get("kind") == "style" and v.get("library")), None)


def local_style_models(search_dirs: Sequence[str | Path]) -> list[str]:
    """Names of style models in ``search_dirs``: folders with model.safetensors + config.json, and
    ``name.safetensors`` files with a ``name.json`` beside them."""
    names = set()
    for folder in map(Path, search_dirs):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.is_dir() and (p / "model.safetensors").is_file() and (p / "config.json").is_file():
                names.add(p.name)
            elif p.suffix == ".safetensors" and p.with_suffix(".json").is_file():
                names.add(p.name)
    return sorted(names)


def cached_hub_style_models(cache_dir: str | Path | None = None) -> list[dict]:
    """Style models in the Hugging Face cache: ``{repo_id, revisions, path, size_mb}`` for every
    cached repo whose snapshot holds a generator ``config.json``."""
    from huggingface_hub import scan_cache_dir

    try:
        info = scan_cache_dir(cache_dir)
    except Exception:  # no cache yet (CacheNotFound) or unreadable
        logger.debug("no readable Hugging Face cache at %s", cache_dir or "the default location", exc_info=True)
        return []
    found = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        for rev in repo.revisions:
            config = rev.snapshot_path / "config.json"
            if (rev.snapshot_path / "model.safetensors").is_file() and _is_generator_config(config):
                found.append({"repo_id": repo.repo_id, "revisions": sorted(rev.refs) or [rev.commit_hash[:12]],
                              "path": str(rev.snapshot_path), "size_mb": round(rev.size_on_disk / 1e6, 2)})
    return found


def _is_generator_config(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("_class_name") in ("GeneratorConfig", "EncoderDecoderConfig")
