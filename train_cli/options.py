"""Command-line flags made from a config dataclass, so each option is declared once.

A field declared with :func:`~ganstyle.core.config.bounded` becomes ``--field-name``: its type
gives the argparse type (``bool``: ``--x/--no-x``; ``tuple[T, ...]``: several values, exactly as
many as the default has when it has any), its choices the choices, its ``doc`` the help, and the
help ends with its default. Every flag defaults to None, so :func:`options_from_args` returns
only the options the user gave.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Iterable, Mapping
from typing import Any

_TYPES = (int, float, str)


def field_doc(cls, name: str) -> str:
    """The ``doc`` of field ``name`` of the dataclass ``cls``."""
    return next(f for f in dataclasses.fields(cls) if f.name == name).metadata.get("doc", "")


def add_config_arguments(parser: argparse.ArgumentParser, cls, *, groups: Mapping[str, Iterable[str]] = (),
                         exclude: Iterable[str] = (), flags: Mapping[str, Iterable[str]] = (),
                         metavars: Mapping[str, str] = (), required: Iterable[str] = (),
                         variadic: Iterable[str] = ()) -> dict[str, Any]:
    """Add a flag for each field of the dataclass ``cls`` except ``exclude``; return the
    argument groups by title.

    groups: {title: field names}, shown in this order (other fields go in a last "options"
    group); flags: {field: option strings} instead of ``--field-name``; metavars: {field: METAVAR};
    required: fields the command line must give; variadic: tuple fields that take any number of
    values (1 or more) even though their default has a fixed length.
    """
    groups, flags, metavars = dict(groups), dict(flags), dict(metavars)
    required, variadic = set(required), set(variadic)
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.name not in set(exclude)]
    grouped = {name for names in groups.values() for name in names}
    sections = {**groups, "options": [f.name for f in fields if f.name not in grouped]}
    by_name = {f.name: f for f in fields}
    made = {}
    for title, names in sections.items():
        group = made[title] = parser.add_argument_group(title)
        for name in names:
            f = by_name[name]
            options = flags.get(name, [f"--{name.replace('_', '-')}"])
            group.add_argument(*options, dest=name, required=name in required,
                               **_argument(f, hints[name], metavars.get(name), name in variadic))
    return made


def options_from_args(args: argparse.Namespace, cls) -> dict[str, Any]:
    """{field: value} of the fields of ``cls`` given on the command line (lists become tuples)."""
    given = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name, None)
        if value is not None:
            given[f.name] = tuple(value) if isinstance(value, list) else value
    return given


def _argument(f: dataclasses.Field, hint, metavar: str | None, variadic: bool = False) -> dict:
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    meta = f.metadata
    doc = meta.get("doc", "").replace("%", "%%")
    if not doc:
        raise TypeError(f"field '{f.name}' has no doc: every flag needs help text")
    kwargs: dict[str, Any] = {"default": None}
    if metavar:
        kwargs["metavar"] = metavar
    if hint is bool:
        kwargs.pop("metavar", None)
        return {**kwargs, "action": argparse.BooleanOptionalAction,
                "help": f"{doc} (default {'on' if default else 'off'})"}
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        kwargs["nargs"] = len(default) if default and not variadic else "+"
        shown = " ".join(map(str, default))
    else:
        item, shown = hint, default
    if item not in _TYPES:
        raise TypeError(f"field '{f.name}' of type {hint} has no command-line form; exclude it and add "
                        f"its flag by hand")
    kwargs["type"] = item
    if meta.get("choices") is not None:
        kwargs["choices"] = tuple(meta["choices"])
    kwargs["help"] = f"{doc} (default {shown})" if shown not in ("", ()) else doc
    return kwargs
