"""Frozen VGG feature encoder (VGG19 default, VGG16) in torchvision's ``features.N`` layout.

Input: RGB images shaped (B, 3, H, W) with values in [0, 1]; ImageNet normalisation happens
inside. Output: a dict of named activations ("relu1_1" … "relu5_4"), each (B, C, H/s, W/s).

Weights are read from safetensors only, and only the tensors up to the deepest layer needed
(the classifier is never read). See :func:`load_vgg_encoder`.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from .device import DTYPE_NAMES, FIXED_PRECISIONS
from .errors import InputError, WeightsError
from .io import check_safetensors_file, load_safetensors_checked, tensors_fingerprint

# Convolution widths per block; "M" is a 2x2 max-pool. Same as torchvision's cfgs "D" and "E".
VGG_BLOCKS = {
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class VGGLayer:
    name: str         # "conv3_2", "relu3_2" or "pool3"
    index: int        # position in torchvision's vgg.features
    kind: str         # "conv" | "relu" | "pool"
    in_channels: int
    out_channels: int


def vgg_layers(arch: str) -> list[VGGLayer]:
    """The torchvision ``features`` sequence of ``arch`` with human names, in order."""
    if arch not in VGG_BLOCKS:
        raise WeightsError(f"unknown VGG architecture '{arch}', expected one of {sorted(VGG_BLOCKS)}")
    layers, idx, cin = [], 0, 3
    for b, widths in enumerate(VGG_BLOCKS[arch], start=1):
        for i, cout in enumerate(widths, start=1):
            layers.append(VGGLayer(f"conv{b}_{i}", idx, "conv", cin, cout))
            layers.append(VGGLayer(f"relu{b}_{i}", idx + 1, "relu", cout, cout))
            idx, cin = idx + 2, cout
        layers.append(VGGLayer(f"pool{b}", idx, "pool", cin, cin))
        idx += 1
    return layers


def layer_names(arch: str) -> list[str]:
    return [layer.name for layer in vgg_layers(arch)]


def expected_shapes(arch: str, deepest: str) -> dict[str, tuple]:
    """safetensors keys (``features.N.weight/bias``) and shapes needed to run up to ``deepest``."""
    shapes = {}
    for layer in _layers_up_to(arch, deepest):
        if layer.kind == "conv":
            shapes[f"features.{layer.index}.weight"] = (layer.out_channels, layer.in_channels, 3, 3)
            shapes[f"features.{layer.index}.bias"] = (layer.out_channels,)
    return shapes


def _layers_up_to(arch: str, deepest: str) -> list[VGGLayer]:
    layers = vgg_layers(arch)
    names = [layer.name for layer in layers]
    if deepest not in names:
        raise ValueError(f"unknown {arch} layer '{deepest}'; valid names: {', '.join(names)}")
    return layers[: names.index(deepest) + 1]


def detect_arch(header: dict) -> str | None:
    """Guess vgg16/vgg19 from a safetensors header by the layout of block 3.

    VGG19's 4th conv of block 3 sits at ``features.16`` (256→256); VGG16 has a pool there and
    block 4's first conv (256→512) at ``features.17``."""
    def shape(k):
        info = header.get(k)
        return tuple(info["shape"]) if info else None
    if shape("features.0.weight") != (64, 3, 3, 3):
        return None
    if shape("features.16.weight") == (256, 256, 3, 3):
        return "vgg19"
    if shape("features.17.weight") == (512, 256, 3, 3):
        return "vgg16"
    if shape("features.14.weight") == (256, 256, 3, 3):
        return "vgg16"  # a truncated file that stops inside block 3 still reads as vgg16-compatible
    return None


class VGGEncoder(nn.Module):
    """Frozen VGG feature extractor.

    >>> enc = VGGEncoder("vgg16", deepest="relu2_1")   # random weights, for shape checks only
    >>> feats = enc(torch.rand(1, 3, 32, 32), ["relu1_1", "relu2_1"])
    >>> tuple(feats["relu1_1"].shape), tuple(feats["relu2_1"].shape)
    ((1, 64, 32, 32), (1, 128, 16, 16))
    """

    def __init__(self, arch: str = "vgg19", deepest: str = "relu5_1", *, identity: str = "random",
                 source: str = ""):
        super().__init__()
        self.arch = arch
        self.deepest = deepest
        self.identity = identity  # "<arch>:<fingerprint of weights>", recorded in StyleFeatures
        self.source = source      # where the weights came from (for messages and model cards)
        self.layers = _layers_up_to(arch, deepest)
        modules = []
        for layer in self.layers:
            if layer.kind == "conv":
                modules.append(nn.Conv2d(layer.in_channels, layer.out_channels, 3, padding=1))
            elif layer.kind == "relu":
                modules.append(nn.ReLU(inplace=False))
            else:
                modules.append(nn.MaxPool2d(2, 2))
        # Named "features" with torchvision's indices, so state-dict keys match the Hub files.
        self.features = nn.Sequential(*modules)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    @property
    def dtype(self) -> torch.dtype:
        return self.features[0].weight.dtype

    @property
    def device(self) -> torch.device:
        return self.features[0].weight.device

    def train(self, mode: bool = True):
        # Always frozen in eval mode: VGG has no dropout/batch-norm in `features`, but callers
        # such as Trainer.train() must not flip it.
        return super().train(False)

    def forward(self, images: torch.Tensor, layers: Sequence[str] = (CONTENT_LAYER, *STYLE_LAYERS)
                ) -> dict[str, torch.Tensor]:
        """images: (B, 3, H, W) in [0, 1] → {layer name: (B, C, h, w)} in the encoder's dtype."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise InputError(f"VGG encoder expects images shaped (B, 3, H, W), got {tuple(images.shape)}")
        wanted = set(layers)
        unknown = wanted - set(self.layer_names)
        if unknown:
            raise ValueError(f"layers {sorted(unknown)} are not computed by this encoder "
                             f"({self.arch} up to {self.deepest})")
        x = (images.to(self.dtype) - self.mean.to(self.dtype)) / self.std.to(self.dtype)
        out: dict[str, torch.Tensor] = {}
        for layer, module in zip(self.layers, self.features):
            x = module(x)
            if layer.name in wanted:
                out[layer.name] = x
                if len(out) == len(wanted):
                    break  # no need to run deeper layers
        return out


def deepest_of(arch: str, layers: Iterable[str]) -> str:
    names = layer_names(arch)
    bad = [layer for layer in layers if layer not in names]
    if bad:
        raise ValueError(f"unknown {arch} layers {bad}")
    return max(layers, key=names.index)


def load_vgg_encoder_file(path: str | Path, arch: str | None = None, *, deepest: str = "relu5_1",
                          dtype: torch.dtype | str = torch.float32, device: torch.device | str = "cpu",
                          source: str | None = None) -> VGGEncoder:
    """Build a :class:`VGGEncoder` from a local safetensors file in torchvision/timm layout.

    ``arch=None`` detects vgg16/vgg19 from the tensor layout; a given ``arch`` that does not
    match the file is an error. Only ``features.N`` tensors up to ``deepest`` are read."""
    path = Path(path)
    if isinstance(dtype, str):
        if dtype not in FIXED_PRECISIONS:
            raise ValueError(f"dtype must be one of {list(FIXED_PRECISIONS)}, got '{dtype}'")
        dtype = DTYPE_NAMES[dtype]
    header = check_safetensors_file(path)
    # timm checkpoints may prefix nothing; some exports use "model.features.N" — accept a prefix.
    prefix = ""
    if "features.0.weight" not in header:
        for key in header:
            if key.endswith("features.0.weight"):
                prefix = key[: -len("features.0.weight")]
                break
    stripped = {k[len(prefix):]: v for k, v in header.items() if k.startswith(prefix)}
    found = detect_arch(stripped)
    if found is None:
        raise WeightsError(
            f"{path}: not a VGG16/VGG19 'features' checkpoint (expected keys like 'features.0.weight' "
            f"shaped (64, 3, 3, 3) in torchvision layout; found keys {list(header)[:6]})")
    if arch is None:
        arch = found
    elif arch != found:
        raise WeightsError(f"{path}: file holds {found} weights but {arch} was requested")
    shapes = expected_shapes(arch, deepest)
    tensors = load_safetensors_checked(path, [prefix + k for k in shapes],
                                       {prefix + k: v for k, v in shapes.items()})
    state = {k[len(prefix):]: v for k, v in tensors.items()}
    encoder = VGGEncoder(arch, deepest, identity=f"{arch}:{tensors_fingerprint(state)}",
                         source=source or str(path))
    encoder.load_state_dict(state, strict=True)
    return encoder.to(device=device, dtype=dtype)


def load_vgg_encoder(ref: str = "vgg19", *, arch: str | None = None, deepest: str = "relu5_1",
                     dtype: torch.dtype | str = torch.float32, device: torch.device | str | None = None,
                     cache_dir: str | Path | None = None, search_dirs: Sequence[str | Path] = ()
                     ) -> VGGEncoder:
    """Load a VGG encoder from a weights reference (registry name, Hub repo, or local file).

    See :func:`ganstyle.core.hub.resolve_weights` for the reference forms."""
    from .device import default_device
    from .hub import resolve_weights

    resolved = resolve_weights(ref, kind="vgg", cache_dir=cache_dir, search_dirs=search_dirs)
    arch = arch or resolved.arch
    return load_vgg_encoder_file(resolved.path, arch, deepest=deepest, dtype=dtype,
                                 device=device or default_device(), source=resolved.source)


def has_inference_tensors(module: torch.nn.Module) -> bool:
    """True when weights were created under inference mode (ComfyUI loads models that way): such
    tensors cannot be saved for backward, so training or optimising through them needs a copy."""
    return any(t.is_inference() for t in [*module.parameters(), *module.buffers()])


def private_copy(encoder: VGGEncoder) -> VGGEncoder:
    """A copy of ``encoder`` with ordinary tensors (call outside inference mode), same device and
    dtype, in eval mode; the caller's encoder is never changed."""
    with torch.device(encoder.device):
        clone = VGGEncoder(encoder.arch, encoder.deepest, identity=encoder.identity, source=encoder.source)
    clone.load_state_dict(encoder.state_dict(), strict=True)
    return clone.to(dtype=encoder.dtype).eval()
