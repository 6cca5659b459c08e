"""Every example workflow (example_workflows/api/*.json, ComfyUI's API format) runs through the
pack's node classes, the way ComfyUI's executor would: node types and input names must exist,
links must point at real outputs of the right type, and the graph must produce images. The UI
files (example_workflows/*.json, what ComfyUI's template browser shows) must describe the same
graph, with widget values in the order of each node's INPUT_TYPES, and have a thumbnail
(NAME.jpg beside NAME.json) for the template browser."""
import json
from pathlib import Path

import pytest
import torch

import ganstyle

from helpers import fill_hub_cache, synthetic_painting, synthetic_photo, tiny_arbitrary, tiny_generator, write_vgg

ROOT = Path(__file__).resolve().parent.parent
API_FILES = sorted((ROOT / "example_workflows" / "api").glob("*.json"))
UI_FILES = sorted((ROOT / "example_workflows").glob("*.json"))


class LoadImage:  # stand-in for ComfyUI's core node of the same name (same input and outputs)
    RETURN_TYPES = ("IMAGE", "MASK")
    IMAGES = {}

    def load_image(self, image):
        img = self.IMAGES[image]
        return img.permute(0, 2, 3, 1), torch.zeros(img.shape[0], *img.shape[-2:])


class LoadImageMask:  # stand-in for ComfyUI's core node (a MASK from one channel of an image)
    RETURN_TYPES = ("MASK",)
    MASKS = {}

    def load_image(self, image, channel):
        return (self.MASKS[image],)


class LoadVideo:  # stand-ins for ComfyUI's core video nodes (comfy_extras/nodes_video.py)
    RETURN_TYPES = ("VIDEO",)
    CLIPS = {}

    def load(self, file):
        return (self.CLIPS[file],)


class GetVideoComponents:
    RETURN_TYPES = ("IMAGE", "AUDIO", "FLOAT")

    def get(self, video):
        return video, None, 24.0


class CreateVideo:
    RETURN_TYPES = ("VIDEO",)

    def create(self, images, fps):
        return (images,)


class SaveVideo:
    RETURN_TYPES = ()

    def save(self, video, filename_prefix, format, codec):
        SaveImage.saved.append((filename_prefix, video))
        return ()


class SaveImage:
    RETURN_TYPES = ()
    saved = []

    def save_images(self, images, filename_prefix):
        self.saved.append((filename_prefix, images))
        return ()


CORE_NODES = {"LoadImage": (LoadImage, "load_image", {"image"}),
              "LoadImageMask": (LoadImageMask, "load_image", {"image", "channel"}),
              "LoadVideo": (LoadVideo, "load", {"file"}), "GetVideoComponents": (GetVideoComponents, "get", {"video"}),
              "CreateVideo": (CreateVideo, "create", {"images", "fps"}),
              "SaveVideo": (SaveVideo, "save", {"video", "filename_prefix", "format", "codec"}),
              "SaveImage": (SaveImage, "save_images", {"images", "filename_prefix"})}


def declared_inputs(cls) -> dict:
    spec = cls.INPUT_TYPES()
    return {**spec.get("required", {}), **spec.get("optional", {})}


def run_workflow(graph: dict, overrides: dict) -> None:
    done: dict[str, tuple] = {}

    def run(node_id: str):
        if node_id in done:
            return done[node_id]
        node = graph[node_id]
        kind = node["class_type"]
        kwargs = {}
        if kind in CORE_NODES:
            cls, fn, names = CORE_NODES[kind]
            assert set(node["inputs"]) == names, f"{kind} inputs {sorted(node['inputs'])}"
        else:
            assert kind in ganstyle.NODE_CLASS_MAPPINGS, f"unknown node type {kind}"
            cls = ganstyle.NODE_CLASS_MAPPINGS[kind]
            fn = cls.FUNCTION
            declared = declared_inputs(cls)
            unknown = set(node["inputs"]) - set(declared)
            assert not unknown, f"node {node_id} ({kind}) has unknown inputs {unknown}"
            missing = set(cls.INPUT_TYPES()["required"]) - set(node["inputs"])
            assert not missing, f"node {node_id} ({kind}) lacks required inputs {missing}"
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                src, slot = value
                assert src in graph, f"node {node_id}.{name} links to missing node {src}"
                src_kind = graph[src]["class_type"]
                src_cls = CORE_NODES.get(src_kind, (ganstyle.NODE_CLASS_MAPPINGS.get(src_kind),))[0]
                out_type = src_cls.RETURN_TYPES[slot]
                if kind not in CORE_NODES:
                    want = declared_inputs(cls)[name][0]
                    assert want == out_type, f"{node_id}.{name} wants {want}, linked to a {out_type}"
                kwargs[name] = run(src)[slot]
            else:
                if kind not in CORE_NODES:
                    choices = declared_inputs(cls)[name][0]
                    if isinstance(choices, list) and name not in ("weights", "model"):
                        assert value in choices, f"{node_id}.{name}={value!r} not in {choices}"
                kwargs[name] = overrides.get(kind, {}).get(name, value)
        with torch.inference_mode():
            done[node_id] = getattr(cls(), fn)(**kwargs)
        return done[node_id]

    for node_id in graph:
        run(node_id)


@pytest.fixture
def tiny_world(tmp_path, monkeypatch):
    """Tiny VGG19 in the Hub cache where 'vgg19' resolves offline, and small input images."""
    import huggingface_hub.constants as c
    vgg = write_vgg(tmp_path / "vgg19.safetensors", "vgg19", seed=3)
    fill_hub_cache(Path(c.HF_HUB_CACHE), "timm/vgg19.tv_in1k", {"model.safetensors": vgg})
    # the sample images the pack copies into ComfyUI's input folder (comfy_env.SAMPLE_IMAGES), small
    LoadImage.IMAGES = {"ganstyle_photo.jpg": synthetic_photo(40, 56),
                        "ganstyle_painting.jpg": synthetic_painting(48, 48),
                        "ganstyle_painting2.jpg": synthetic_painting(32, 40, seed=7)}
    mask = torch.zeros(1, 20, 28)
    mask[..., 10:] = 1.0
    LoadImageMask.MASKS = {"ganstyle_mask.png": mask}
    # a 6-frame clip: the photo moving right by 2 px per frame (ComfyUI IMAGE batch, B H W C)
    LoadVideo.CLIPS = {"ganstyle_clip.mp4": torch.cat([synthetic_photo(40, 56).roll(2 * i, -1) for i in range(6)])
                       .permute(0, 2, 3, 1)}
    SaveImage.saved = []
    monkeypatch.setenv("GANSTYLE_MODELS_DIR", str(tmp_path / "models"))
    # a tiny style library under the shipped library's name (used where the registry lacks it)
    library = tiny_generator(styles=tuple({"name": n} for n in
                                          ("ice_palace", "fire_temple", "the_fall", "altar", "coast", "sketches")))
    library.save_pretrained(tmp_path / "models" / "style_transfer" / "library-fast")
    # the encoder arbitrary-fast reads style features with (vgg16-hed, built once into models/vgg) and a
    # tiny arbitrary-style model that reads that encoder's features (the workflow is pointed at it)
    from ganstyle.core.vgg import load_vgg_encoder_file
    (tmp_path / "models" / "vgg").mkdir(parents=True)
    hed = write_vgg(tmp_path / "models" / "vgg" / "vgg16-hed.safetensors", "vgg16", seed=5)
    tiny_arbitrary(encoder=load_vgg_encoder_file(hed).identity).save_pretrained(
        tmp_path / "models" / "style_transfer" / "tiny-arbitrary")


def test_there_are_seven_workflows_in_both_formats():
    assert {p.stem for p in API_FILES} == {"stylize_with_shipped_model", "optimize_with_vgg", "blend_two_styles",
                                           "video_without_flicker", "train_a_style", "masked_two_styles",
                                           "any_style_in_one_pass"}
    assert {p.stem for p in UI_FILES} == {p.stem for p in API_FILES}


@pytest.mark.parametrize("path", API_FILES, ids=lambda p: p.stem)
def test_api_workflow_runs_through_the_pack(path, tiny_world):
    graph = json.loads(path.read_text())
    small = {"OptimizeStylize": {"steps": 3, "long_side": 48, "start_side": 32, "preview_every": 0},
             "StyleFeatures": {"style_size": 64}, "TrainStyle": {"steps": 2, "image_size": 32}}
    if path.stem == "any_style_in_one_pass":
        small["LoadStyleModel"] = {"model": "tiny-arbitrary"}
    run_workflow(graph, small)
    assert len(SaveImage.saved) == 1
    prefix, images = SaveImage.saved[0]
    assert prefix.startswith("ganstyle/") and images.dim() == 4 and images.shape[-1] == 3
    frames = 6 if "video" in path.stem else 1
    assert images.shape[0] == frames and float(images.min()) >= 0 and float(images.max()) <= 1
    content = LoadImage.IMAGES["ganstyle_photo.jpg"].permute(0, 2, 3, 1)
    assert images.shape[1] / images.shape[2] == pytest.approx(content.shape[1] / content.shape[2], rel=0.05)
    assert (torch.nn.functional.interpolate(images.permute(0, 3, 1, 2), size=content.shape[1:3]).permute(0, 2, 3, 1)
            - content).abs().mean() > 1e-3  # it changed the picture (3 tiny steps for the optimisers)


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
            if src_type in ganstyle.NODE_CLASS_MAPPINGS:   # e.g. GANSTYLE_MODEL, not core's STYLE_MODEL
                want = ganstyle.NODE_CLASS_MAPPINGS[src_type].RETURN_TYPES[slot]
                assert typ == inp["type"] == want, f"{path.name} link {inp['link']}: {typ}/{inp['type']} != {want}"
        widget_values = [v for k, v in spec["inputs"].items() if not isinstance(v, list)]
        got = [v for v in node["widgets_values"] if v not in ("fixed", "image")]
        assert got == widget_values, f"{path.name} node {node_id}: widgets {got} != {widget_values}"
        if node["type"] in ganstyle.NODE_CLASS_MAPPINGS:
            order = [k for k in declared_inputs(ganstyle.NODE_CLASS_MAPPINGS[node["type"]]) if k in spec["inputs"]
                     and not isinstance(spec["inputs"][k], list)]
            assert list(k for k in spec["inputs"] if not isinstance(spec["inputs"][k], list)) == order
            # ComfyUI's editor makes a widget of every such input, optional ones included, and fills
            # them from widgets_values in order: a missing value shifts or drops the user's setting
            widgets = [k for k, (kind, *_) in declared_inputs(ganstyle.NODE_CLASS_MAPPINGS[node["type"]]).items()
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
