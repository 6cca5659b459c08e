"""ComfyUI glue. Every module in this folder that defines ``NODE_CLASS_MAPPINGS`` is collected."""
import importlib
import pkgutil

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("_") or _info.name in ("comfy_env", "options"):
        continue
    _module = importlib.import_module(f".{_info.name}", __name__)
    NODE_CLASS_MAPPINGS.update(getattr(_module, "NODE_CLASS_MAPPINGS", {}))
    NODE_DISPLAY_NAME_MAPPINGS.update(getattr(_module, "NODE_DISPLAY_NAME_MAPPINGS", {}))

# Inside ComfyUI: put the sample images the example workflows load into its input folder
# (ganstyle_*.jpg; existing files are kept). Never stops the pack from loading.
try:
    from . import comfy_env as _comfy_env
    _comfy_env.install_sample_images()
except Exception:  # pragma: no cover - install_sample_images already reports its own failures
    pass
