"""Style files: one style's norm parameters, trained on a style library's frozen convolutions.

A library's styles differ only in their instance-norm scales and shifts, so a new style is a few
thousand numbers: ``ganstyle train --base LIBRARY --style new.jpg`` trains just those and writes
a *style file* beside the full model, a folder holding

- ``style.safetensors``: for every norm layer of the library, ``<layer>.weight`` and
  ``<layer>.bias``, each (C,) (a few KB);
- ``style.json``: the style's record (name, source, licence, author) and the identity of the
  library's shared weights it was trained on (``base_fingerprint``), so it is never added to a
  library it does not fit.

:func:`add_styles` appends style files to a library (``--styles-from`` on the command line, the
Load GAN Style Model node's ``styles_from`` input).
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


def save_style_file(generator: StyleGenerator, folder: str | Path, record: dict, base: StyleGenerator) -> Path:
    """Write the style of single-style ``generator`` (trained on ``base``'s convolutions) as a style
    file in ``folder``. ``record``: name (required), source, licence, author."""
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
                                              "base_fingerprint": shared_fingerprint(base)})
    return folder


def read_style_file(folder: str | Path) -> tuple[dict, dict[str, torch.Tensor], str]:
    """(record, {norm parameter: (C,) tensor}, base fingerprint) of a style file folder."""
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
    record = {k: str(v) for k, v in data.items() if k in STYLE_INFO_KEYS}
    return record, load_safetensors_checked(folder / STYLE_WEIGHTS), str(data.get("base_fingerprint", ""))


def add_styles(library: StyleGenerator, folders: Sequence[str | Path]) -> StyleGenerator:
    """A new library: ``library``'s styles followed by those of the style files in ``folders``.
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
