"""ComfyUI glue: the pack's nodes (``NODES``, each module's ``NODES`` in turn), written on the node
schema :mod:`.comfy_env` picks. Where ComfyUI has the V3 schema (``comfy_api.latest``),
:func:`comfy_entrypoint` hands them to ComfyUI as one extension; elsewhere the pack's root module
exports them as V1 ``NODE_CLASS_MAPPINGS`` (``NODE_CLASSES`` here, by node id)."""
from __future__ import annotations

from . import comfy_env, encoder, optimize, stylize, train

NODES: list = [*encoder.NODES, *optimize.NODES, *stylize.NODES, *train.NODES]
# by node id (the ids saved workflows know), and the names the node library shows
NODE_CLASSES: dict = {}
DISPLAY_NAMES: dict = {}
for _node in NODES:
    _schema = _node.define_schema()
    NODE_CLASSES[_schema.node_id] = _node
    DISPLAY_NAMES[_schema.node_id] = _schema.display_name

if comfy_env.V3:
    class GanstyleExtension(comfy_env.ComfyExtension):
        """The pack for ComfyUI's V3 loader."""

        async def get_node_list(self) -> list:
            return list(NODES)

    async def comfy_entrypoint() -> GanstyleExtension:
        return GanstyleExtension()

# Inside ComfyUI: put the sample images the example workflows load into its input folder
# (ganstyle_*.jpg; existing files are kept). Never stops the pack from loading.
try:
    comfy_env.install_sample_images()
except Exception:  # pragma: no cover - install_sample_images already reports its own failures
    pass
