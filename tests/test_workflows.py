"""Every example workflow (example_workflows/api/*.json, ComfyUI's API format) runs through the
pack's node classes, the way ComfyUI's executor would: node types and input names must exist,
links must point at real outputs of the right type, and the graph must produce images. The UI
files (example_workflows/*.json, what ComfyUI's template browser shows) must describe the same
graph, with widget values in the order of each node's INPUT_TYPES, and have a thumbnail
(NAME.jpg beside NAME.json) for the template browser."""
import json
from pathlib import Path

import pytest
from workflow_runner import check_saved_result, declared_inputs, run_workflow, small_overrides, use_inputs

from ganstyle.nodes import NODE_CLASSES as NODES

from helpers import workflow_world

ROOT = Path(__file__).resolve().parent.parent
API_FILES = sorted((ROOT / "example_workflows" / "api").glob("*.json"))
UI_FILES = sorted((ROOT / "example_workflows").glob("*.json"))


@pytest.fixture
def tiny_world(tmp_path, monkeypatch):
    """Tiny VGG19 in the Hub cache where 'vgg19' resolves offline, tiny models, small input images."""
    use_inputs(**workflow_world(tmp_path))
    monkeypatch.setenv("GANSTYLE_MODELS_DIR", str(tmp_path / "models"))


def test_there_are_seven_workflows_in_both_formats():
    assert {p.stem for p in API_FILES} == {"stylize_with_shipped_model", "optimize_with_vgg", "blend_two_styles",
                                           "video_without_flicker", "train_a_style", "masked_two_styles",
                                           "any_style_in_one_pass"}
    assert {p.stem for p in UI_FILES} == {p.stem for p in API_FILES}


@pytest.mark.parametrize("path", API_FILES, ids=lambda p: p.stem)
def test_api_workflow_runs_through_the_pack(path, tiny_world):
    run_workflow(json.loads(path.read_text()), small_overrides(path.stem), NODES)
    check_saved_result(path.stem)


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_ui_workflow_matches_api(path):
    ui = json.loads(path.read_text())
    api = json.loads((path.parent / "api" / path.name).read_text())
    nodes = {str(n["id"]): n for n in ui["nodes"]}
    assert set(nodes) == set(api)
    links = {link[0]: link for link in ui["links"]}
    for node_id, node in nodes.items():
        spec = api[node_id]
        assert node["type"] == spec["class_type"]
        for inp in node["inputs"]:
            _, src, slot, dst, _, typ = links[inp["link"]]
            assert str(dst) == node_id and spec["inputs"][inp["name"]] == [str(src), slot]
            src_type = nodes[str(src)]["type"]
            if src_type in NODES:   # e.g. GANSTYLE_MODEL, not core's STYLE_MODEL
                want = tuple(NODES[src_type].RETURN_TYPES)[slot]
                assert typ == inp["type"] == want, f"{path.name} link {inp['link']}: {typ}/{inp['type']} != {want}"
        widget_values = [v for k, v in spec["inputs"].items() if not isinstance(v, list)]
        got = [v for v in node["widgets_values"] if v not in ("fixed", "image")]
        assert got == widget_values, f"{path.name} node {node_id}: widgets {got} != {widget_values}"
        if node["type"] in NODES:
            order = [k for k in declared_inputs(NODES[node["type"]]) if k in spec["inputs"]
                     and not isinstance(spec["inputs"][k], list)]
            assert list(k for k in spec["inputs"] if not isinstance(spec["inputs"][k], list)) == order
            # ComfyUI's editor makes a widget of every such input, optional ones included, and fills
            # them from widgets_values in order: a missing value shifts or drops the user's setting
            widgets = [k for k, (kind, *_) in declared_inputs(NODES[node["type"]]).items()
                       if isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN")]
            assert order == widgets, f"{path.name} node {node_id}: widget inputs {order}, the node has {widgets}"


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_ui_workflow_has_a_small_thumbnail(path):
    """ComfyUI's template browser shows example_workflows/NAME.(jpg|webp|png) as NAME.json's picture."""
    from PIL import Image
    thumbs = [path.with_suffix(ext) for ext in (".jpg", ".webp", ".png") if path.with_suffix(ext).is_file()]
    assert len(thumbs) == 1, f"{path.name}: thumbnails {thumbs}"
    assert thumbs[0].stat().st_size <= 40_000
    with Image.open(thumbs[0]) as im:
        assert max(im.size) <= 512 and min(im.size) >= 128
