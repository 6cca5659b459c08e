"""Node inputs built from the core's option dataclasses, so each option is declared once (type,
default, bounds, choices and tooltip all come from its ``bounded(...)`` field), and the core's
refusals of an option said with the node's name for the input (:func:`inputs_named`)."""
from __future__ import annotations

import contextlib
import dataclasses
import typing
from collections.abc import Iterable, Iterator, Mapping

from ..core.config import OptionError
from .comfy_env import io

# An input is a field name, or (input name, field name) where a saved workflow knows the input by
# another name than the field.
Names = Iterable["str | tuple[str, str]"]


def _pairs(names: Names) -> list[tuple[str, str]]:
    return [(n, n) if isinstance(n, str) else tuple(n) for n in names]


def option_inputs(options_cls: type, names: Names, widgets: Mapping[str, dict] | None = None, *,
                  optional: bool = False) -> list:
    """Node inputs (``io`` inputs of the node schema, :mod:`.comfy_env`) for fields of
    ``options_cls``, in the order given; ``optional``: all of them optional.

    bool → Boolean, int → Int, float → Float, a field with choices → a Combo; ``default``,
    ``min``/``max`` and ``tooltip`` come from the field. ``widgets`` adds widget-only settings per
    input name (``step``, a ``max`` for ComfyUI's 64-bit seed convention, a ``default`` that saved
    workflows already have, a ``tooltip`` that says what the input does in this node).

    >>> from ganstyle.core.optimize import OptimizeOptions
    >>> [(i.id, i.max) for i in option_inputs(OptimizeOptions, ["steps"], {"steps": {"step": 1}})]
    [('steps', 100000)]
    """
    kinds = {bool: io.Boolean, int: io.Int, float: io.Float}
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    hints = typing.get_type_hints(options_cls)
    widgets = widgets or {}
    inputs = []
    for name, field_name in _pairs(names):
        field = fields[field_name]
        meta = field.metadata
        opts = {"default": field.default}
        if meta.get("choices") is not None:
            kind = io.Combo
            opts["options"] = list(meta["choices"])
        elif hints[field_name] in kinds:
            kind = kinds[hints[field_name]]
            opts.update({key: meta[bound] for key, bound in (("min", "lo"), ("max", "hi"))
                         if meta.get(bound) is not None})
        else:
            raise TypeError(f"{options_cls.__name__}.{field_name} ({hints[field_name]}) has no node widget")
        opts.update(widgets.get(name, {}))
        opts.setdefault("tooltip", meta["doc"])
        inputs.append(kind.Input(name, optional=optional, **opts))
    return inputs


def values_from_inputs(options_cls: type, names: Names, inputs: Mapping,
                       widgets: Mapping[str, dict] | None = None) -> dict:
    """``{field: value}`` of a node function's keyword arguments for fields of ``options_cls``;
    an input left out gets its widget's ``default`` when ``widgets`` gives one (what the node
    shows), else the field's."""
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    widgets = widgets or {}
    values = {}
    for name, field_name in _pairs(names):
        if name in inputs:
            values[field_name] = inputs[name]
        elif "default" in widgets.get(name, {}):
            values[field_name] = widgets[name]["default"]
        elif fields[field_name].default is not dataclasses.MISSING:
            values[field_name] = fields[field_name].default
    return values


def options_from_inputs(options_cls: type, names: Names, inputs: Mapping,
                        widgets: Mapping[str, dict] | None = None, **fixed):
    """``options_cls`` from a node function's keyword arguments (inputs left out keep the
    widget's default, else the field's); ``fixed``: fields the node sets itself."""
    return options_cls(**values_from_inputs(options_cls, names, inputs, widgets), **fixed)


def input_names(*names: Names) -> dict[str, str]:
    """``{field name: input name}`` of the inputs ``names`` (as :func:`option_inputs` takes them)."""
    return {field: name for group in names for name, field in _pairs(group)}


@contextlib.contextmanager
def inputs_named(names: Mapping[str, str]) -> Iterator[None]:
    """Within (or, as a decorator, in a node function): a refused option
    (:class:`~ganstyle.core.config.OptionError`) is re-raised with the node's name for it
    (``names``: {field name: input name}; other fields are already named as the node's inputs),
    the core's wording kept."""
    try:
        yield
    except OptionError as e:
        raise e.renamed(names) from e
