"""Model settings as dataclasses ↔ ``config.json`` (diffusers' ConfigMixin, simplified).

Loading validates strictly: unknown fields, missing fields, wrong types and values outside the
declared bounds are each a :class:`ConfigError` naming the file and the field. Nothing in a
config is ever executed.

A field added after files were already written declares ``legacy=``: the value that reproduces the
behaviour from before the field existed. A file without the field loads with that value (not the
new default), so an old model or an old run's ``options.json`` keeps meaning what it meant.

The same bounds check user-facing options (:func:`check_options`, behind every options
dataclass's ``checked()``): one implementation of "this value is outside its field's bounds",
whether the value comes from a file or from a caller. A refused option is an
:class:`OptionError`, whose message names the option by its field name so that each front-end
can put its own name for it (``--strength``, a node input) in the same wording.
"""
from __future__ import annotations

import dataclasses
import json
import string
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError, InputError
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
    check_fields(cls, data, source)
    obj = cls(**data)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except ValueError as e:
            raise ConfigError(f"{source}: {e}") from e
    return obj


def check_fields(cls, values: Mapping[str, Any], source: str) -> None:
    """Check ``values`` ({field: value}, some or all fields of the dataclass ``cls``) against the
    fields' declared types, choices and bounds; the first problem is a :class:`ConfigError`
    ``"{source}: field 'name' is …"``. (:func:`config_from_dict` checks every field with it; a
    front-end may check the fields it takes before it does any work.)"""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        problem = field_problem(fields[name], value, hints[name])
        if problem is not None:
            raise ConfigError(f"{source}: field '{name}' {problem}")


def field_problem(f: dataclasses.Field, value: Any, hint) -> str | None:
    """What is wrong with ``value`` for the field ``f`` (type ``hint``), worded to follow the
    option's name: ``"is 1.5, must be at most 1.0"``; None when nothing is. Types, then choices,
    then the bounds of :func:`bounded`."""
    if not _type_ok(value, hint):
        expected = getattr(hint, "__name__", hint)
        return f"is {value!r} ({type(value).__name__}), expected {expected}"
    meta = f.metadata
    if meta.get("choices") is not None and value not in meta["choices"]:
        return f"is {value!r}, expected one of {list(meta['choices'])}"
    if meta.get("lo") is not None and value < meta["lo"]:
        return f"is {value}, must be at least {meta['lo']}"
    if meta.get("hi") is not None and value > meta["hi"]:
        return f"is {value}, must be at most {meta['hi']}"
    return None


class OptionError(InputError):
    """A user-facing option refused. The message is ``template`` with each ``{key}`` replaced by
    the name of the option ``key`` (by default ``names[key]``, else ``key`` itself: the field
    name), so a front-end can say the same thing with its own names:
    ``error.renamed({"strength": "--strength"})``. Literal braces in ``template`` are doubled
    (:func:`brace_escaped`).

    >>> e = OptionError("{strength} is 1.5, must be at most 1.0")
    >>> str(e), str(e.renamed({"strength": "--strength"}))
    ('strength is 1.5, must be at most 1.0', '--strength is 1.5, must be at most 1.0')
    """

    def __init__(self, template: str, names: Mapping[str, str] | None = None):
        self.template = template
        self.keys = [key for _, key, _, _ in string.Formatter().parse(template) if key]
        self.names = {key: key for key in self.keys} | dict(names or {})
        super().__init__(template.format_map(self.names))

    @classmethod
    def about(cls, key: str, problem: str, name: str | None = None) -> OptionError:
        """``"{key} {problem}"``: an option and what is wrong with it (``name``: how the core
        calls the option, when not by ``key``)."""
        return cls(f"{{{key}}} {brace_escaped(problem)}", None if name is None else {key: name})

    def renamed(self, names: Mapping[str, str]) -> OptionError:
        """The same refusal with the options this error names called by ``names`` ({key: name});
        keys not in ``names`` keep their name."""
        return OptionError(self.template, {**self.names, **{k: v for k, v in names.items() if k in self.names}})


def brace_escaped(text: str) -> str:
    """``text`` as a literal part of an :class:`OptionError` template."""
    return str(text).replace("{", "{{").replace("}", "}}")


def check_options(options: T) -> T:
    """Check every field of the options dataclass instance ``options`` against its declared type,
    choices and bounds, then its ``validate()`` if it has one; return ``options``. The first
    problem is an :class:`OptionError` naming the field (``"strength is 1.5, must be at most
    1.0"``). The ``checked()`` of every options dataclass is this."""
    hints = typing.get_type_hints(type(options))
    for f in dataclasses.fields(options):
        problem = field_problem(f, getattr(options, f.name), hints[f.name])
        if problem is not None:
            raise OptionError.about(f.name, problem)
    validate = getattr(options, "validate", None)
    if validate is not None:
        validate()
    return options


def _type_ok(value: Any, hint) -> bool:
    origin = typing.get_origin(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is typing.Union or str(origin) == "types.UnionType":
        return any(_is_instance(value, a) for a in typing.get_args(hint))
    return True


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
