"""The pack's version, importable relatively from anywhere inside it (``from ..version import
__version__``): the pack can't import itself as ``ganstyle``, because ComfyUI imports it under the
name of the folder it was cloned into. pyproject.toml's ``[project] version`` must be the same
(tests/test_packaging.py checks)."""

__version__ = "0.1.0"
