"""Sharing style models on the Hugging Face Hub.

:func:`push_to_hub` uploads a trained model (``model.safetensors`` + ``config.json``), its model
card (``README.md``, with a license, tags, sample images and the training options) and the sample
images, in one commit, via :class:`huggingface_hub.HfApi`. Before anything is uploaded the model is
loaded with the strict loader and the card is checked (license present, every image it shows is
part of the upload), so a broken model never reaches the Hub.

A *style file* (one style for a style library: ``style.safetensors`` + ``style.json``, written by
``ganstyle train --base`` into ``RUN_DIR/style``) is pushed the same way, with a card of its own.

Downloading is the other direction: any Hub reference ``org/name[@revision]`` works wherever a
style model is accepted (:func:`ganstyle.core.models.load_style_model`), and wherever a style
file is (``--styles-from``, :func:`ganstyle.core.style_files.locate_style_file`), through the Hub cache.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, InputError, WeightsError
from .generator import StyleGenerator
from .hub import HUB_REF
from .model_card import TAGS as CARD_TAGS
from .model_card import model_card, style_file_card
from .style_files import STYLE_RECORD, STYLE_WEIGHTS, local_style_file, read_style_file, read_style_record

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
TAGS = [*CARD_TAGS, "image-to-image"]
_IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class PushResult:
    repo_id: str
    revision: str
    url: str
    files: list[str] = field(default_factory=list)


def find_model_dir(run_or_model_dir: str | Path) -> Path:
    """A training run folder (``RUN_DIR/model/``) or a model folder itself → the model folder."""
    path = Path(run_or_model_dir).expanduser()
    if not path.is_dir():
        raise InputError(f"{path}: not a folder (give a training run folder or a model folder with "
                         f"model.safetensors and config.json)")
    for candidate in (path / "model", path):
        if (candidate / "model.safetensors").is_file() and (candidate / "config.json").is_file():
            return candidate
    raise WeightsError(f"{path}: no model.safetensors + config.json here or in {path / 'model'} "
                       f"(has the training run finished and exported its model?)")


def prepare_upload(run_or_model_dir: str | Path, staging: Path, *, repo_id: str,
                   license: str | None = None) -> list[str]:
    """Copy what will be uploaded into ``staging`` and return the file names: weights, config,
    model card (license and tags ensured), sample images, training options. A style file folder
    (or a run folder with ``style/``) uploads the style file and its card instead."""
    from huggingface_hub import ModelCard

    style_dir = local_style_file(run_or_model_dir)
    if style_dir is not None:
        read_style_file(style_dir)      # refuse a broken style file before anything is uploaded
        files, source_dir = [STYLE_WEIGHTS, STYLE_RECORD], style_dir
    else:
        source_dir = model_dir = find_model_dir(run_or_model_dir)
        # Refuse models that would not load: strict config and weight checks, nothing executed.
        generator = StyleGenerator.from_files(model_dir / "model.safetensors", model_dir / "config.json")
        files = ["model.safetensors", "config.json"]
    for name in files:
        shutil.copy2(source_dir / name, staging / name)
    for image in sorted(source_dir.iterdir()):
        if image.suffix.lower() in IMAGE_SUFFIXES and image.is_file():
            shutil.copy2(image, staging / image.name)
            files.append(image.name)
    run_dir = source_dir.parent if source_dir.name in ("model", "style") else source_dir
    options = run_dir / "options.json"
    if options.is_file():
        shutil.copy2(options, staging / "options.json")
        files.append("options.json")

    card_path = source_dir / "README.md"
    images = {f: "sample" for f in files if f.lower().endswith(IMAGE_SUFFIXES)}
    if card_path.is_file():
        text = card_path.read_text(encoding="utf-8")
    elif style_dir is not None:
        text = style_file_card(read_style_record(style_dir), reference=repo_id, images=images)
    else:
        text = model_card(repo_id.split("/")[-1], generator, reference=repo_id, options_file="options.json" in files,
                          images=images)
    card = ModelCard(text)
    if license:
        card.data.license = license
    if not card.data.license:
        raise ConfigError(f"{card_path if card_path.is_file() else 'model card'}: no license. Pass one "
                          f"(e.g. --license cc-by-4.0, mit, other) and check the style images' licences first")
    card.data.library_name = card.data.library_name or "ganstyle"
    card.data.pipeline_tag = card.data.pipeline_tag or "image-to-image"
    card.data.tags = list(dict.fromkeys([*(card.data.tags or []), *TAGS]))
    missing = [link for link in _IMAGE_LINK.findall(card.text)
               if "://" not in link and link.split("#")[0] not in files]
    if missing:
        raise ConfigError(f"model card {card_path}: shows {missing} but no such file is in {source_dir}")
    (staging / "README.md").write_text(str(card), encoding="utf-8")
    files.append("README.md")
    return files


def push_to_hub(run_or_model_dir: str | Path, repo_id: str, *, private: bool = False,
                revision: str | None = None, token: str | None = None, license: str | None = None,
                commit_message: str | None = None, api=None) -> PushResult:
    """Create (or reuse) the Hub repo ``repo_id`` and upload the model in one commit.

    ``revision`` names a branch (created from main when missing). ``token`` defaults to the
    logged-in token (``huggingface-cli login`` / ``HF_TOKEN``)."""
    from huggingface_hub import HfApi

    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id) or not HUB_REF.match(repo_id):
        raise InputError(f"repo id {repo_id!r} is not of the form 'org/name'")
    api = api or HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="ganstyle-push-") as tmp:
        staging = Path(tmp)
        files = prepare_upload(run_or_model_dir, staging, repo_id=repo_id, license=license)
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
        commit = api.upload_folder(repo_id=repo_id, folder_path=str(staging), repo_type="model",
                                   revision=revision, commit_message=commit_message or
                                   f"Upload ganstyle {'style file' if STYLE_RECORD in files else 'model'} "
                                                   f"({', '.join(files)})")
    url = getattr(commit, "commit_url", None) or str(repo_url)
    return PushResult(repo_id, revision or "main", url, files)
