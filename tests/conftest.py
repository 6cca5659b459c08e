"""Shared fixtures (helpers live in helpers.py, importable from every test)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import synthetic_painting, synthetic_photo, write_vgg


@pytest.fixture(scope="session")
def vgg_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("vgg")
    write_vgg(d / "vgg16.safetensors", "vgg16", seed=0)
    write_vgg(d / "vgg19.safetensors", "vgg19", seed=1)
    return d


@pytest.fixture(scope="session")
def vgg16_file(vgg_dir) -> Path:
    return vgg_dir / "vgg16.safetensors"


@pytest.fixture(scope="session")
def vgg19_file(vgg_dir) -> Path:
    return vgg_dir / "vgg19.safetensors"


@pytest.fixture(scope="session")
def vgg16(vgg16_file):
    from ganstyle.core.vgg import load_vgg_encoder_file
    return load_vgg_encoder_file(vgg16_file, deepest="relu5_1")


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    """Loaded style models are cached by file: every test starts and ends with an empty cache."""
    from ganstyle.core.models import clear_cache
    clear_cache()
    yield
    clear_cache()


@pytest.fixture(autouse=True)
def _offline_hub(monkeypatch, tmp_path):
    """Tests never touch the network: the Hub is offline and its cache is per-test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    import huggingface_hub.constants as c
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"), raising=False)


@pytest.fixture
def one_thread():
    """Tiny tensors gain nothing from threads, and on a shared, loaded 2-core machine OpenMP threads
    waiting for each other make them many times slower. Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def auto_is_fp32(monkeypatch):
    """"auto" precision is fp32 on every CPU, as on most (on CPUs with AMX it is bf16: tested in
    tests/core/test_stylize.py)."""
    import ganstyle.core.device as device

    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: False)


@pytest.fixture
def photo() -> torch.Tensor:
    return synthetic_photo()


@pytest.fixture
def painting() -> torch.Tensor:
    return synthetic_painting()
