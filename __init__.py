"""ganstyle: GAN-based cross-domain style transfer for ComfyUI (and a library: ``ganstyle.core``).

ComfyUI imports this folder as a custom-node pack. Where ComfyUI has the V3 node schema
(``comfy_api.latest``), the pack is a V3 extension: ``comfy_entrypoint`` (and no
``NODE_CLASS_MAPPINGS``, which ComfyUI would load instead). In an older ComfyUI it exports the same
nodes as V1 ``NODE_CLASS_MAPPINGS`` / ``NODE_DISPLAY_NAME_MAPPINGS``. Importing it without ComfyUI
installed works too (the nodes only touch ComfyUI when they run); ``nodes.NODE_CLASSES`` has them.
"""
from .core.version import __version__
from .nodes import comfy_env as _comfy_env

if _comfy_env.V3:
    from .nodes import comfy_entrypoint

    __all__ = ["comfy_entrypoint", "__version__"]
else:
    from .nodes import DISPLAY_NAMES as NODE_DISPLAY_NAME_MAPPINGS
    from .nodes import NODE_CLASSES as NODE_CLASS_MAPPINGS

    __all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "__version__"]
