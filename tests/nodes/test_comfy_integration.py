"""What a new ComfyUI user meets first: the example workflows' images are in ComfyUI's input folder
after the pack is imported, our node and type names cannot be mistaken for core ComfyUI's, and
progress previews are never shown larger than the image they show."""
import importlib
import json
import sys
from pathlib import Path

import pytest
import torch

import ganstyle
from ganstyle.nodes import comfy_env

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / "example_workflows").glob("*.json")) + sorted(
    (ROOT / "example_workflows" / "api").glob("*.json"))

# ComfyUI core (nodes.py, comfy_extras): node keys, display names and link types near ours.
CORE_NODE_KEYS = {"StyleModelLoader", "StyleModelApply", "LoadImage", "SaveImage", "ImageScale"}
CORE_DISPLAY_NAMES = {"Load Style Model", "Apply Style Model", "Load Image", "Save Image"}
CORE_TYPES = {"STYLE_MODEL", "CLIP_VISION", "CLIP_VISION_OUTPUT", "IMAGE", "MODEL", "VAE"}


def referenced_images(path: Path) -> set[str]:
    data = json.loads(path.read_text())
    loaders = {"LoadImage": "image", "LoadImageMask": "image", "LoadVideo": "file"}
    if "nodes" in data:   # UI format
        return {n["widgets_values"][0] for n in data["nodes"] if n["type"] in loaders}
    return {n["inputs"][loaders[n["class_type"]]] for n in data.values() if n["class_type"] in loaders}


def reimport_pack():
    """What ComfyUI does at start-up: import the pack (its nodes package) afresh."""
    import ganstyle.nodes
    importlib.reload(ganstyle.nodes)


def test_import_puts_every_workflow_image_in_the_input_folder(comfy):
    reimport_pack()
    written = sorted(p.name for p in comfy.input_dir.iterdir())
    assert written == sorted(comfy_env.SAMPLE_IMAGES)
    for name, sample in comfy_env.SAMPLE_IMAGES.items():
        assert (comfy.input_dir / name).read_bytes() == (comfy_env.SAMPLES_DIR / sample).read_bytes()
    assert WORKFLOWS
    for path in WORKFLOWS:
        images = referenced_images(path)
        assert images, f"{path.name} loads no image"
        for image in images:
            assert (comfy.input_dir / image).is_file(), f"{path.relative_to(ROOT)} loads {image}, not in input/"


def test_import_never_overwrites_a_users_file(comfy):
    mine = comfy.input_dir / "ganstyle_painting.jpg"
    mine.write_bytes(b"my own picture")
    reimport_pack()
    assert mine.read_bytes() == b"my own picture"
    assert (comfy.input_dir / "ganstyle_photo.jpg").is_file()
    assert comfy_env.install_sample_images() == []   # all there now: nothing written


def test_import_survives_an_unusable_input_folder(comfy, monkeypatch, caplog):
    import folder_paths  # the fake one (conftest.py)

    blocker = comfy.input_dir.parent / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(folder_paths, "get_input_directory", lambda: str(blocker / "input"))
    assert comfy_env.install_sample_images() == []
    assert "could not copy the sample images" in caplog.text
    monkeypatch.setattr(folder_paths, "get_input_directory", lambda: 1 / 0)
    reimport_pack()   # does not raise
    assert "LoadStyleModel" in ganstyle.nodes.NODE_CLASSES


def test_outside_comfyui_nothing_is_copied():
    assert comfy_env.install_sample_images() == []


def test_names_and_types_are_our_own():
    nodes, names = ganstyle.nodes.NODE_CLASSES, ganstyle.nodes.DISPLAY_NAMES
    for key, cls in nodes.items():
        assert key not in CORE_NODE_KEYS
        name = names[key]
        assert name not in CORE_DISPLAY_NAMES and name.endswith("ganstyle)"), name
        ours = set(cls.RETURN_TYPES) - {"IMAGE"}
        assert not ours & CORE_TYPES, f"{key} returns a core ComfyUI type {ours & CORE_TYPES}"
    assert names["LoadStyleModel"] == "Load GAN Style Model (ganstyle)"
    assert tuple(nodes["LoadStyleModel"].RETURN_TYPES) == ("GANSTYLE_MODEL",)
    assert nodes["GANStylize"].INPUT_TYPES()["required"]["style_model"][0] == "GANSTYLE_MODEL"


def test_the_pack_exports_v1_mappings_or_a_v3_entry_point_never_both():
    """ComfyUI loads NODE_CLASS_MAPPINGS when a pack has them, else comfy_entrypoint: exactly one
    (without comfy_api to import, as here, the V1 one: an older ComfyUI's way)."""
    exports = [name for name in ("NODE_CLASS_MAPPINGS", "comfy_entrypoint") if hasattr(ganstyle, name)]
    assert exports == (["comfy_entrypoint"] if comfy_env.V3 else ["NODE_CLASS_MAPPINGS"])
    if not comfy_env.V3:
        assert ganstyle.NODE_CLASS_MAPPINGS == ganstyle.nodes.NODE_CLASSES
        assert ganstyle.NODE_DISPLAY_NAME_MAPPINGS == ganstyle.nodes.DISPLAY_NAMES
    assert list(ganstyle.nodes.NODE_CLASSES) == ["LoadVGGEncoder", "StyleFeatures", "BlendStyleFeatures",
                                                 "OptimizeStylize", "LoadStyleModel", "GANStylize", "TrainStyle"]


@pytest.mark.parametrize("api", ["v3", "v1"])
@pytest.mark.parametrize("hw, sent", [((60, 80), (80, 60)), ((300, 200), (200, 300)), ((600, 1000), (512, 307))])
def test_preview_is_never_larger_than_the_image(comfy, monkeypatch, hw, sent, api):
    """V3 progress API: the preview is sent as is (ignore_size_limit); V1 ProgressBar: with a
    max_size of its own size (ComfyUI would otherwise enlarge it to --preview-size)."""
    if api == "v1":   # an older ComfyUI: no comfy_api
        monkeypatch.setitem(sys.modules, "comfy_api.latest", None)
    bar = comfy_env.Progress(4)
    bar.update(1, torch.rand(1, 3, *hw))
    bar.update(2)
    ((fmt, image, max_size),) = comfy.previews
    assert fmt == "JPEG" and image.size == sent and max_size == (None if api == "v3" else max(sent))
    assert comfy.updates == [(1, 4), (2, 4)]


def test_progress_outside_a_running_node_is_quiet(comfy):
    """ComfyUI's V3 progress API refuses progress where no node runs (no node to show it on): the
    bar then shows nothing, and the work goes on."""
    comfy.running = False
    bar = comfy_env.Progress(2)
    bar.update(1, torch.rand(1, 3, 8, 8))
    comfy.running = True
    bar.update(2)
    assert comfy.updates == [] and comfy.previews == []
