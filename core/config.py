"""Model settings as dataclasses ↔ ``config.json`` (diffusers' ConfigMixin, simplified).

Loading validates strictly: unknown fields, missing fields, wrong types and values outside the
declared bounds are each a :class:`ConfigError` naming the file and the field. Nothing in a
config is ever executed.

A field added after files were already written declares ``legacy=``: the value that reproduces the
behaviour from before the field existed. A file without the field loads with that value (not the
new default), so an old model or an old run's ``options.json`` keeps meaning what it meant.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError
from .io import atomic_write_json

T = TypeVar("T")


_NO_LEGACY = object()


def bounded(default, lo=None, hi=None, choices=None, doc: str = "", legacy=_NO_LEGACY):
    """A dataclass field with validation bounds kept in its metadata.

    ``legacy``: for a field added later, the value that a file written without it gets (see the
    module docstring); without it, a missing field is an error."""
    metadata = {"lo": lo, "hi": hi, "choices": choices, "doc": doc}
    if legacy is not _NO_LEGACY:
        metadata["legacy"] = legacy
    return dataclasses.field(default=default, metadata=metadata)


def config_to_dict(cfg) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    d["_class_name"] = type(cfg).__name__
    return d


def config_from_dict(cls: type[T], data: dict[str, Any], source: str = "config") -> T:
    """Build ``cls`` from a dict, refusing unknown/missing fields and out-of-range values."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
    data = {k: v for k, v in data.items() if not k.startswith("_")}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown fields {unknown} for {cls.__name__} "
                          f"(known: {sorted(fields)})")
    data.update({n: f.metadata["legacy"] for n, f in fields.items() if n not in data and "legacy" in f.metadata})
    missing = sorted(n for n in fields if n not in data)
    if missing:
        raise ConfigError(f"{source}: missing fields {missing} for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    for name, f in fields.items():
        value = data[name]
        _check_type(source, name, value, hints[name])
        meta = f.metadata
        if meta.get("choices") is not None and value not in meta["choices"]:
            raise ConfigError(f"{source}: field '{name}' is {value!r}, expected one of {list(meta['choices'])}")
        if meta.get("lo") is not None and value < meta["lo"]:
            raise ConfigError(f"{source}: field '{name}' is {value}, must be at least {meta['lo']}")
        if meta.get("hi") is not None and value > meta["hi"]:
            raise ConfigError(f"{source}: field '{name}' is {value}, must be at most {meta['hi']}")
    obj = cls(**data)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except ValueError as e:
            raise ConfigError(f"{source}: {e}") from e
    return obj


def _check_type(source: str, name: str, value: Any, hint) -> None:
    origin = typing.get_origin(hint)
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif hint is str:
        ok = isinstance(value, str)
    elif origin in (list, tuple):
        ok = isinstance(value, (list, tuple))
    elif origin is typing.Union or str(origin) == "types.UnionType":
        ok = any(_is_instance(value, a) for a in typing.get_args(hint))
    else:
        ok = True
    if not ok:
        expected = getattr(hint, "__name__", hint)
        raise ConfigError(f"{source}: field '{name}' is {value!r} ({type(value).__name__}), expected {expected}")


def _is_instance(value, t) -> bool:
    if t is type(None):
        return value is None
    try:
        return isinstance(value, t)
    except TypeError:
        return True


def save_config(cfg, folder: str | Path) -> Path:
    path = Path(folder) / "config.json"
    atomic_write_json(path, config_to_dict(cfg))
    return path


def load_config(cls: type[T], folder: str | Path) -> T:
    path = Path(folder)
    if path.is_dir():
        path = path / "config.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: config.json not found (a model folder needs model.safetensors "
                          f"and config.json)") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid JSON: {e}") from e
    expected = data.get("_class_name") if isinstance(data, dict) else None
    if expected is not None and expected != cls.__name__:
        raise ConfigError(f"{path}: config is for {expected}, expected {cls.__name__}")
    return config_from_dict(cls, data, source=str(path))
