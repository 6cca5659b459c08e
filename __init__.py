"""ganstyle: GAN-based cross-domain style transfer for ComfyUI (and a library: ``ganstyle.core``).

ComfyUI imports this folder as a custom-node pack and reads the two mappings below. Importing it
without ComfyUI installed works too (the nodes only touch ComfyUI when they run).
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__version__ = "0.1.0"
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
