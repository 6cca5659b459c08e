"""Node inputs built from the core's option dataclasses, so each option is declared once (type,
default, bounds, choices and tooltip all come from its ``bounded(...)`` field)."""
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Mapping

_WIDGETS = {bool: "BOOLEAN", int: "INT", float: "FLOAT"}

# An input is a field name, or (input name, field name) where a saved workflow knows the input by
# another name than the field.
Names = Iterable["str | tuple[str, str]"]


def _pairs(names: Names) -> list[tuple[str, str]]:
    return [(n, n) if isinstance(n, str) else tuple(n) for n in names]


def option_inputs(options_cls: type, names: Names, widgets: Mapping[str, dict] | None = None) -> dict:
    """``{input name: ComfyUI input spec}`` for fields of ``options_cls``, in the order given.

    bool → BOOLEAN, int → INT, float → FLOAT, a field with choices → a combo; ``default``,
    ``min``/``max`` and ``tooltip`` come from the field. ``widgets`` adds widget-only settings per
    input name (``step``, or a ``max`` for ComfyUI's 64-bit seed convention).

    >>> from ganstyle.core.optimize import OptimizeOptions
    >>> option_inputs(OptimizeOptions, ["steps"], {"steps": {"step": 1}})["steps"][1]["max"]
    100000
    """
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    hints = typing.get_type_hints(options_cls)
    widgets = widgets or {}
    spec = {}
    for name, field_name in _pairs(names):
        field = fields[field_name]
        meta = field.metadata
        opts = {"default": field.default}
        if meta.get("choices") is not None:
            kind = list(meta["choices"])
        elif hints[field_name] in _WIDGETS:
            kind = _WIDGETS[hints[field_name]]
            opts.update({key: meta[bound] for key, bound in (("min", "lo"), ("max", "hi"))
                         if meta.get(bound) is not None})
        else:
            raise TypeError(f"{options_cls.__name__}.{field_name} ({hints[field_name]}) has no node widget")
        opts.update(widgets.get(name, {}))
        opts["tooltip"] = meta["doc"]
        spec[name] = (kind, opts)
    return spec


def options_from_inputs(options_cls: type, names: Names, inputs: Mapping, **fixed):
    """``options_cls`` from a node function's keyword arguments (inputs left out keep the field's
    default); ``fixed``: fields the node sets itself."""
    given = {field: inputs[name] for name, field in _pairs(names) if name in inputs}
    return options_cls(**given, **fixed)
