"""A stand-in for ComfyUI's V3 node schema (``comfy_api.latest.io``) where ComfyUI has none: an
older ComfyUI, or no ComfyUI at all (tests, the library). See :mod:`.comfy_env` for the choice.

The pack's nodes are written once, V3-style (``define_schema`` returning a :class:`Schema`, the
classmethod ``execute`` returning a :class:`NodeOutput`), against ``io``: the real one or this
module, which has the same names for the part of the schema the pack uses (and refuses a setting
the real one would not take). A node built on this module's :class:`ComfyNode` also speaks
ComfyUI's V1 protocol (``INPUT_TYPES``, ``RETURN_TYPES``, ``FUNCTION``, ``VALIDATE_INPUTS``, ...),
made from its schema: an older ComfyUI loads it as a V1 node.
"""
from __future__ import annotations

import dataclasses
from typing import Any

# The settings each kind of input takes (the real schema's keyword names) and their V1 spelling.
_BASE = {"display_name", "tooltip", "lazy", "raw_link", "extra_dict"}
_WIDGET = _BASE | {"default", "socketless", "force_input"}
_SETTINGS = {"BOOLEAN": _WIDGET | {"label_on", "label_off"},
             "INT": _WIDGET | {"min", "max", "step", "control_after_generate", "display_mode"},
             "FLOAT": _WIDGET | {"min", "max", "step", "round", "display_mode"},
             "STRING": _WIDGET | {"multiline", "placeholder", "dynamic_prompts"},
             "COMBO": _WIDGET | {"options", "control_after_generate"}}
_V1_NAMES = {"display_mode": "display", "dynamic_prompts": "dynamicPrompts", "force_input": "forceInput",
             "raw_link": "rawLink"}


class Input:
    """One input, a socket or a widget; its settings are attributes, as on the real schema's."""

    def __init__(self, io_type: str, id: str, optional: bool = False, **settings):
        allowed = _SETTINGS.get(io_type, _BASE)
        unknown = set(settings) - allowed
        if unknown:
            raise TypeError(f"a {io_type} input ('{id}') takes no {', '.join(sorted(unknown))}")
        if io_type == "COMBO" and settings.get("options") is None:
            raise TypeError(f"combo input '{id}' needs options")
        self.io_type, self.id, self.optional = io_type, id, optional
        for key in allowed:
            setattr(self, key, settings.get(key))
        self.settings = {key: value for key, value in settings.items() if value is not None}

    def get_io_type(self) -> str:
        return self.io_type

    def v1(self) -> tuple:
        """ComfyUI V1's ``(type, {settings})``; a combo's type is its list of choices."""
        extra = self.settings.get("extra_dict") or {}
        opts = {_V1_NAMES.get(k, k): v for k, v in self.settings.items() if k != "extra_dict"} | extra
        if self.io_type == "COMBO":
            return list(opts.pop("options")), opts
        return self.io_type, opts


class Output:
    def __init__(self, io_type: str, id: str | None = None, display_name: str | None = None,
                 tooltip: str | None = None, is_output_list: bool = False):
        self.io_type, self.id, self.tooltip, self.is_output_list = io_type, id, tooltip, is_output_list
        self.display_name = display_name or id


class ComfyType:
    """A type: ``Type.Input(id, ...)``, ``Type.Output(...)``, as ``io.Int`` etc. are."""

    def __init__(self, io_type: str):
        self.io_type = io_type

    def Input(self, id: str, **settings) -> Input:  # noqa: N802 - the real schema's name
        return Input(self.io_type, id, **settings)

    def Output(self, id: str | None = None, **settings) -> Output:  # noqa: N802
        return Output(self.io_type, id, **settings)


def Custom(io_type: str) -> ComfyType:  # noqa: N802 - the real schema's name
    """A type of the pack's own (``io.Custom("GANSTYLE_MODEL")``)."""
    return ComfyType(io_type)


Boolean, Int, Float, String = ComfyType("BOOLEAN"), ComfyType("INT"), ComfyType("FLOAT"), ComfyType("STRING")
Combo, Image, Mask = ComfyType("COMBO"), ComfyType("IMAGE"), ComfyType("MASK")


@dataclasses.dataclass
class Schema:
    """A node's definition (the real schema's fields that the pack may use)."""
    node_id: str
    display_name: str | None = None
    category: str = "sd"
    inputs: list = dataclasses.field(default_factory=list)
    outputs: list = dataclasses.field(default_factory=list)
    hidden: list = dataclasses.field(default_factory=list)
    description: str = ""
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    not_idempotent: bool = False

    def __post_init__(self):   # as the real Schema.validate(); ComfyUI 0.3.4x-0.3.6x: across both too
        ids = [i.id for i in self.inputs] + [o.id for o in self.outputs if o.id is not None]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.node_id}: input and output ids must be unique, got {ids}")


class NodeOutput:
    """What ``execute`` returns: the output values (``.args``, in the schema's output order) and
    optional UI data."""

    def __init__(self, *args: Any, ui: dict | None = None):
        self.args, self.ui = args, ui

    @property
    def result(self):
        return self.args if self.args else None

    def __getitem__(self, index):
        return self.args[index]


class _FromSchema:
    """A V1 class attribute read from the node's schema (``Node.RETURN_TYPES`` etc.)."""

    def __init__(self, read):
        self.read = read

    def __get__(self, obj, owner):
        return self.read(owner.define_schema())


class ComfyNode:
    """Base of the pack's nodes without ComfyUI's V3 schema: written V3-style, seen as V1."""

    @classmethod
    def define_schema(cls) -> Schema:
        raise NotImplementedError

    @classmethod
    def execute(cls, **kwargs) -> NodeOutput:
        raise NotImplementedError

    @classmethod
    def validate_inputs(cls, **kwargs) -> bool | str:
        raise NotImplementedError

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "validate_inputs" in cls.__dict__:   # V1 asks only nodes that have VALIDATE_INPUTS
            cls.VALIDATE_INPUTS = cls.validate_inputs

    # ComfyUI's V1 protocol, read from the schema
    @classmethod
    def INPUT_TYPES(cls) -> dict:  # noqa: N802
        spec: dict = {"required": {}}
        for i in cls.define_schema().inputs:
            spec.setdefault("optional" if i.optional else "required", {})[i.id] = i.v1()
        return spec

    RETURN_TYPES = _FromSchema(lambda s: tuple(o.io_type for o in s.outputs))
    RETURN_NAMES = _FromSchema(lambda s: tuple(o.display_name or o.io_type for o in s.outputs))
    OUTPUT_TOOLTIPS = _FromSchema(lambda s: tuple(o.tooltip for o in s.outputs))
    OUTPUT_IS_LIST = _FromSchema(lambda s: tuple(o.is_output_list for o in s.outputs))
    CATEGORY = _FromSchema(lambda s: s.category)
    DESCRIPTION = _FromSchema(lambda s: s.description)
    OUTPUT_NODE = _FromSchema(lambda s: s.is_output_node)
    DEPRECATED = _FromSchema(lambda s: s.is_deprecated)
    EXPERIMENTAL = _FromSchema(lambda s: s.is_experimental)
    NOT_IDEMPOTENT = _FromSchema(lambda s: s.not_idempotent)
    INPUT_IS_LIST = _FromSchema(lambda s: s.is_input_list)
    FUNCTION = "execute_v1"

    @classmethod
    def execute_v1(cls, **inputs):
        """What V1 calls (on an instance): ``execute``'s values as a tuple (with its UI data, if any)."""
        out = cls.execute(**inputs)
        return {"ui": out.ui, "result": out.args} if out.ui is not None else out.args
