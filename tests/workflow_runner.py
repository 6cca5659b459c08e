"""Runs ComfyUI API-format workflows (example_workflows/api/*.json) through a node pack's classes,
the way ComfyUI's executor does, with stand-ins for the ComfyUI core nodes the example workflows
use (Load Image, Save Image, the video nodes).

This module imports neither ``ganstyle`` nor ``helpers``: tests/test_pack_import.py runs it in an
interpreter where no package named ``ganstyle`` exists (the pack is imported under its folder's
name, as ComfyUI does), so keep it that way. The node classes come in as an argument (the pack's
``nodes.NODE_CLASSES``: V3 nodes, on ComfyUI's schema or the pack's stand-in for it)."""
from __future__ import annotations

import torch


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

# The smallest settings that still run every node for real (the optimisers and training: a few tiny steps).
SMALL = {"OptimizeStylize": {"steps": 3, "long_side": 48, "start_side": 32, "preview_every": 0},
         "StyleFeatures": {"style_size": 64}, "TrainStyle": {"steps": 2, "image_size": 32}}


def small_overrides(stem: str) -> dict:
    """The input overrides example workflow ``stem`` runs with in the tests: :data:`SMALL`, and the
    tiny arbitrary-style model (``tiny-arbitrary`` in the models folder) for any_style_in_one_pass."""
    small = {kind: dict(values) for kind, values in SMALL.items()}
    if stem == "any_style_in_one_pass":
        small["LoadStyleModel"] = {"model": "tiny-arbitrary"}
    return small


def use_inputs(images: dict, masks: dict, clips: dict) -> None:
    """What the stand-in Load Image / Load Image (as Mask) / Load Video nodes return, by file name
    (images (1, 3, H, W), masks (1, H, W), clips ComfyUI IMAGE batches); forgets saved results."""
    LoadImage.IMAGES, LoadImageMask.MASKS, LoadVideo.CLIPS = dict(images), dict(masks), dict(clips)
    SaveImage.saved = []


def declared_inputs(cls) -> dict:
    """``{input: (type, settings)}`` of a node, required then optional, as ComfyUI's V1 view of it
    lists them; a combo's type is its list of choices (a V3 node's V1 view says COMBO and puts the
    choices in its settings)."""
    spec = cls.INPUT_TYPES()
    declared = {}
    for name, (kind, *settings) in {**spec.get("required", {}), **spec.get("optional", {})}.items():
        settings = dict(settings[0]) if settings else {}
        if kind == "COMBO":
            kind = list(settings.pop("options"))
        declared[name] = (kind, settings)
    return declared


def run_workflow(graph: dict, overrides: dict, node_classes: dict) -> None:
    """Run API-format ``graph``: each node's class from ``node_classes`` (the pack's nodes by id,
    ``nodes.NODE_CLASSES``) or :data:`CORE_NODES`, called in inference mode with its inputs (a pack
    node: its V3 ``execute``; links resolved to upstream outputs first;
    ``overrides[class_type][input]`` replaces a widget value), checking node types, input names and
    link types on the way."""
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
            assert kind in node_classes, f"unknown node type {kind}"
            cls = node_classes[kind]
            declared = declared_inputs(cls)
            unknown = set(node["inputs"]) - set(declared)
            assert not unknown, f"node {node_id} ({kind}) has unknown inputs {unknown}"
            missing = set(cls.INPUT_TYPES().get("required", {})) - set(node["inputs"])
            assert not missing, f"node {node_id} ({kind}) lacks required inputs {missing}"
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                src, slot = value
                assert src in graph, f"node {node_id}.{name} links to missing node {src}"
                src_kind = graph[src]["class_type"]
                src_cls = CORE_NODES.get(src_kind, (node_classes.get(src_kind),))[0]
                out_type = tuple(src_cls.RETURN_TYPES)[slot]
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
            if kind in CORE_NODES:
                done[node_id] = getattr(cls(), fn)(**kwargs)
            else:
                done[node_id] = tuple(cls.execute(**kwargs).args)
        return done[node_id]

    for node_id in graph:
        run(node_id)


def check_saved_result(stem: str) -> None:
    """After example workflow ``stem`` ran: it saved exactly one result, under ganstyle/, of the
    content photo's shape (6 frames for the video workflow), in [0, 1], and different from the photo."""
    assert len(SaveImage.saved) == 1, f"{stem}: saved {len(SaveImage.saved)} results"
    prefix, images = SaveImage.saved[0]
    assert prefix.startswith("ganstyle/") and images.dim() == 4 and images.shape[-1] == 3
    frames = 6 if "video" in stem else 1
    assert images.shape[0] == frames and float(images.min()) >= 0 and float(images.max()) <= 1
    content = LoadImage.IMAGES["ganstyle_photo.jpg"].permute(0, 2, 3, 1)
    assert abs(images.shape[1] / images.shape[2] - content.shape[1] / content.shape[2]) \
        <= 0.05 * content.shape[1] / content.shape[2]
    assert (torch.nn.functional.interpolate(images.permute(0, 3, 1, 2), size=content.shape[1:3]).permute(0, 2, 3, 1)
            - content).abs().mean() > 1e-3  # it changed the picture (3 tiny steps for the optimisers)
