"""ganstyle: GAN-based cross-domain style transfer for ComfyUI (and a library: ``ganstyle.core``).

ComfyUI imports this folder as a custom-node pack and reads the two mappings below. Importing it
without ComfyUI installed works too (the nodes only touch ComfyUI when they run).
"""
from .core.version import __version__
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "__version__"]
