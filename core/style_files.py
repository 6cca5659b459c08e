"""Style files: one style's norm parameters, trained on a style library's frozen convolutions.

A library's styles differ only in their instance-norm scales and shifts, so a new style is a few
thousand numbers: ``ganstyle train --base LIBRARY --style new.jpg`` trains just those and writes
a *style file* beside the full model, a folder holding

- ``style.safetensors``: for every norm layer of the library, ``<layer>.weight`` and
  ``<layer>.bias``, each (C,) (a few KB);
- ``style.json``: the style's record (name, source, licence, author), the library it was trained
  on (``base``, as given to ``--base``) and the identity of that library's shared weights
  (``base_fingerprint``), so it is never added to a library it does not fit.

:func:`add_styles` appends style files to a library (``--styles-from`` on the command line, the
Load GAN Style Model node's ``styles_from`` input). A style file is named by its folder, a
training run folder (``RUN_DIR/style``) or a Hugging Face Hub repo ``org/name[@revision]``
(:func:`locate_style_file`; ``ganstyle push`` uploads one with its model card).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from .errors import WeightsError
from .generator import STYLE_INFO_KEYS, StyleGenerator
from .io import atomic_write_json, load_safetensors_checked, save_safetensors_atomic, tensors_fingerprint

STYLE_WEIGHTS = "style.safetensors"
STYLE_RECORD = "style.json"


def shared_fingerprint(generator: StyleGenerator) -> str:
    """Identity of the weights every style shares (everything but the norm layers' scale/shift)."""
    norms = set(generator.norm_parameter_names())
    return tensors_fingerprint({k: v for k, v in generator.state_dict().items() if k not in norms})


def save_style_file(generator: StyleGenerator, folder: str | Path, record: dict, base: StyleGenerator,
                    base_name: str = "") -> Path:
    """Write the style of single-style ``generator`` (trained on ``base``'s convolutions) as a style
    file in ``folder``. ``record``: name (required), source, licence, author; ``base_name``: how the
    library is referred to (registry name or Hub repo), for the model card and users."""
    if generator.config.num_styles:
        raise ValueError("save_style_file takes the single-style generator of the new style")
    if shared_fingerprint(generator) != shared_fingerprint(base):
        raise WeightsError("the generator's shared weights differ from the library's: only a style trained with "
                           "the library's convolutions frozen (ganstyle train --base) can become a style file")
    folder = Path(folder)
    state = generator.state_dict()
    save_safetensors_atomic({k: state[k].float().contiguous() for k in generator.norm_parameter_names()},
                            folder / STYLE_WEIGHTS, metadata={"format": "pt", "class": "StyleFile"})
    atomic_write_json(folder / STYLE_RECORD, {"_class_name": "StyleFile",
                                              **{k: str(v) for k, v in record.items() if k in STYLE_INFO_KEYS},
                                              "base": str(base_name), "base_fingerprint": shared_fingerprint(base)})
    return folder


def read_style_record(folder: str | Path) -> dict:
    """The whole ``style.json`` of a style file folder, checked: ``_class_name`` 'StyleFile' and a name."""
    folder = Path(folder)
    try:
        data = json.loads((folder / STYLE_RECORD).read_text())
    except FileNotFoundError:
        raise WeightsError(f"{folder}: not a style file ({STYLE_RECORD} missing; a style file folder holds "
                           f"{STYLE_WEIGHTS} and {STYLE_RECORD})") from None
    except json.JSONDecodeError as e:
        raise WeightsError(f"{folder / STYLE_RECORD}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("_class_name") != "StyleFile" or not data.get("name"):
        raise WeightsError(f"{folder / STYLE_RECORD}: not a style record (needs _class_name 'StyleFile' and a name)")
    return data


def read_style_file(folder: str | Path) -> tuple[dict, dict[str, torch.Tensor], str]:
    """(record, {norm parameter: (C,) tensor}, base fingerprint) of a style file folder."""
    folder = Path(folder)
    data = read_style_record(folder)
    record = {k: str(v) for k, v in data.items() if k in STYLE_INFO_KEYS}
    return record, load_safetensors_checked(folder / STYLE_WEIGHTS), str(data.get("base_fingerprint", ""))


def is_style_file(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / STYLE_RECORD).is_file() and (folder / STYLE_WEIGHTS).is_file()


def local_style_file(run_or_style_dir: str | Path) -> Path | None:
    """The style file folder of a local path: the path itself, or a ``ganstyle train --base`` run's
    ``style/``; None when neither holds one."""
    path = Path(run_or_style_dir).expanduser()
    return next((folder for folder in (path, path / "style") if is_style_file(folder)), None)


def locate_style_file(ref: str | Path, *, cache_dir: str | Path | None = None) -> Path:
    """The folder of a style file: ``ref`` is that folder, a training run folder (its ``style/``),
    or a Hub repo ``org/name[@revision]`` (both files fetched into the Hugging Face cache, or found
    there offline). Anything else is a :class:`WeightsError` saying what was looked for."""
    from .hub import hub_download, parse_hub_ref

    path = Path(str(ref)).expanduser()
    folder = local_style_file(path)
    if folder is not None:
        return folder
    if path.exists():
        raise WeightsError(f"{path}: no style file here ({STYLE_WEIGHTS} + {STYLE_RECORD}, as 'ganstyle train "
                           f"--base LIBRARY' writes into RUN_DIR/style)")
    parsed = parse_hub_ref(str(ref))
    if parsed is None or parsed[1]:
        raise WeightsError(f"style file '{ref}' not found: give its folder, a training run folder or a Hub repo "
                           f"'org/name[@revision]'")
    repo_id, _, revision = parsed
    advice = (f"Download {STYLE_RECORD} and {STYLE_WEIGHTS} from https://huggingface.co/{repo_id} into one folder "
              f"and pass that folder instead.")
    record = hub_download(repo_id, STYLE_RECORD, revision=revision, cache_dir=cache_dir, advice=advice)
    hub_download(repo_id, STYLE_WEIGHTS, revision=revision, cache_dir=cache_dir, advice=advice)
    return record.parent


def add_styles(library: StyleGenerator, folders: Sequence[str | Path]) -> StyleGenerator:
    """A new library: ``library``'s styles followed by those of the style files in ``folders``
    (local folders; :func:`locate_style_file` finds them from other references).
    A file trained on another library, a name already taken or a missing/misshaped parameter is
    a :class:`WeightsError` naming the file."""
    if not library.config.num_styles:
        raise WeightsError("styles can only be added to a style library (a model whose config lists 'styles')")
    fingerprint = shared_fingerprint(library)
    records, rows = list(library.config.styles), []
    for folder in folders:
        record, tensors, base = read_style_file(folder)
        if base != fingerprint:
            raise WeightsError(f"{folder}: style '{record['name']}' was trained on another library "
                               f"(base {base or 'unknown'}, this library {fingerprint})")
        if record["name"] in [r["name"] for r in records]:
            raise WeightsError(f"{folder}: a style named '{record['name']}' is already in the library")
        rows.append(tensors)
        records.append(record)
    if not rows:
        return library
    import dataclasses

    grown = StyleGenerator(dataclasses.replace(library.config, styles=tuple(records)))
    state = library.state_dict()
    norm_keys = set(library.norm_parameter_names())
    new_state = {}
    for key, value in state.items():
        if key not in norm_keys:
            new_state[key] = value.float()
            continue
        extra = []
        for folder, tensors in zip(folders, rows):
            if key not in tensors or tensors[key].shape != (value.shape[1],):
                got = tuple(tensors[key].shape) if key in tensors else "missing"
                raise WeightsError(f"{folder}/{STYLE_WEIGHTS}: '{key}' must be ({value.shape[1]},), got {got}")
            extra.append(tensors[key].float()[None])
        new_state[key] = torch.cat([value.float(), *extra])
    grown.load_state_dict(new_state)
    first = next(library.parameters())
    return grown.to(first.device, first.dtype).train(library.training).requires_grad_(False)
