"""A stand-in ComfyUI for the node tests: the ``folder_paths``, ``comfy.model_management``,
``comfy.utils`` (V1 progress bar) and ``comfy_api.latest`` (V3 progress API) modules that
:mod:`ganstyle.nodes.comfy_env` talks to."""
import sys
import types

import pytest
import torch


@pytest.fixture
def comfy(monkeypatch, tmp_path):
    """Installs the fake modules; returns their state: ``updates`` (the progress bar's
    ``(value, total)`` calls), ``checks`` (interrupt checks so far), ``interrupt_after`` (Cancel
    once more checks than this are made; None: never), ``previews`` (the progress bar's preview
    ``(format, PIL image, max_size)`` tuples, as ComfyUI sends them), ``style_dir``
    (models/style_transfer), ``input_dir`` (ComfyUI's input folder,
    ``folder_paths.get_input_directory()``) and ``running`` (a node is running: where not, ComfyUI's
    V3 progress API refuses progress, having no node to show it on).

    Progress goes through the V3 API (``ComfyAPISync().execution.set_progress``), as in a ComfyUI
    that has it; remove ``comfy_api.latest`` from ``sys.modules`` for the V1 ProgressBar."""
    models_dir = tmp_path / "ComfyUI" / "models"
    input_dir = tmp_path / "ComfyUI" / "input"
    input_dir.mkdir(parents=True)
    fp = types.ModuleType("folder_paths")
    fp.models_dir = str(models_dir)
    fp.folder_names_and_paths = {}
    fp.get_folder_paths = lambda name: fp.folder_names_and_paths[name][0]
    fp.get_input_directory = lambda: str(input_dir)
    state = types.SimpleNamespace(updates=[], previews=[], interrupt_after=None, checks=0, input_dir=input_dir,
                                  running=True)
    mm = types.ModuleType("comfy.model_management")
    mm.get_torch_device = lambda: torch.device("cpu")
    mm.unet_offload_device = lambda: torch.device("cpu")

    def throw_exception_if_processing_interrupted():
        state.checks += 1
        if state.interrupt_after is not None and state.checks > state.interrupt_after:
            raise InterruptedError("Processing interrupted")  # ComfyUI's InterruptProcessingException

    mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
    utils = types.ModuleType("comfy.utils")

    class ProgressBar:
        def __init__(self, total):
            self.total = total

        def update_absolute(self, value, total=None, preview=None):
            state.updates.append((value, total))
            if preview is not None:
                state.previews.append(preview)

    utils.ProgressBar = ProgressBar
    pkg = types.ModuleType("comfy")
    pkg.utils, pkg.model_management = utils, mm

    class Execution:   # comfy_api/latest/__init__.py: ComfyAPI_latest.Execution
        def set_progress(self, value, max_value, node_id=None, preview_image=None, ignore_size_limit=False):
            if not state.running:
                raise ValueError("node_id must be provided if not in executing context")
            state.updates.append((value, max_value))
            if preview_image is not None:   # what ComfyUI makes of it (1024: its default --preview-size)
                state.previews.append((preview_image.format or "JPEG", preview_image,
                                       None if ignore_size_limit else 1024))

    class ComfyAPISync:
        def __init__(self):
            self.execution = Execution()

    api, latest = types.ModuleType("comfy_api"), types.ModuleType("comfy_api.latest")
    latest.ComfyAPISync, api.latest = ComfyAPISync, latest
    for name, module in {"folder_paths": fp, "comfy": pkg, "comfy.utils": utils, "comfy.model_management": mm,
                         "comfy_api": api, "comfy_api.latest": latest}.items():
        monkeypatch.setitem(sys.modules, name, module)
    state.style_dir = models_dir / "style_transfer"
    state.style_dir.mkdir(parents=True)
    return state
