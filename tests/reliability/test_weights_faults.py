"""Reliability: every broken weights/config file is a clear WeightsError/ConfigError naming the
file and the problem, and no partially loaded model is ever returned or cached."""
from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from ganstyle.core import models as style_models
from ganstyle.core.errors import ConfigError, GanstyleError, WeightsError
from ganstyle.core.generator import StyleGenerator
from ganstyle.core.hub import resolve_weights
from ganstyle.core.io import sha256_file
from ganstyle.core.vgg import load_vgg_encoder_file

from helpers import fill_hub_cache, synthetic_photo, tiny_generator, write_vgg


@pytest.fixture
def model_dir(tmp_path):
    return tiny_generator().save_pretrained(tmp_path / "model")



def expect_error(exc_type, fn, *needles):
    """Call fn, require exc_type, and that the message contains every needle (case-insensitive)."""
    with pytest.raises(exc_type) as info:
        fn()
    message = str(info.value)
    for needle in needles:
        assert str(needle).lower() in message.lower(), message
    return message


# ---- broken safetensors -------------------------------------------------------------------------
@pytest.mark.parametrize("keep", [0, 5, 8, 40, 0.5, 0.99])
def test_truncated_weights_name_file(model_dir, keep):
    weights = model_dir / "model.safetensors"
    data = weights.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep
    weights.write_bytes(data[:n])
    msg = expect_error(WeightsError, lambda: StyleGenerator.from_pretrained(model_dir), weights)
    assert any(w in msg for w in ("truncated", "too short", "corrupt", "not a valid")), msg
    # the model cache never keeps a failed load
    expect_error(WeightsError, lambda: style_models.load_style_model(str(model_dir)), weights)
    assert len(style_models._cache) == 0


def test_random_bytes_and_bad_header(model_dir):
    weights = model_dir / "model.safetensors"
    g = torch.Generator().manual_seed(0)
    weights.write_bytes(bytes(torch.randint(0, 256, (4096,), generator=g, dtype=torch.uint8).tolist()))
    expect_error(WeightsError, lambda: StyleGenerator.from_pretrained(model_dir), weights)
    header = b"{not json!!"
    weights.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 64)
    expect_error(WeightsError, lambda: StyleGenerator.from_pretrained(model_dir), weights, "JSON")


def test_corrupt_tensor_bytes_flip_to_nan(model_dir):
    """Bytes flipped inside the tensor data (header intact) that produce NaN are refused."""
    weights = model_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-64:] = b"\xff" * 64  # 0xffffffff is a float32 NaN
    weights.write_bytes(bytes(data))
    expect_error(WeightsError, lambda: StyleGenerator.from_pretrained(model_dir), weights, "NaN")


@pytest.mark.parametrize("zip_format", [True, False])
def test_pickle_renamed_to_safetensors_is_never_unpickled(model_dir, tmp_path, zip_format, monkeypatch):
    weights = model_dir / "model.safetensors"
    torch.save(tiny_generator().state_dict(), weights, _use_new_zipfile_serialization=zip_format)
    calls = []
    monkeypatch.setattr(pickle, "load", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a))
    expect_error(WeightsError, lambda: StyleGenerator.from_pretrained(model_dir), weights, "pickle")
    expect_error(WeightsError, lambda: load_vgg_encoder_file(weights), weights, "pickle")
    assert calls == []
    pth = tmp_path / "model.pth"
    pth.write_bytes(weights.read_bytes())
    expect_error(WeightsError, lambda: style_models.load_style_model(str(pth)), "pickle")


# ---- wrong architecture / dtype ---------------------------------------------------------------
def test_weights_of_another_architecture(model_dir, tmp_path):
    other = tiny_generator(base_channels=6).save_pretrained(tmp_path / "other")
    (model_dir / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    expect_error(WeightsError, lambda: StyleGenerator.from_pretrained(model_dir),
                 model_dir / "model.safetensors", "shape")
    # more residual blocks in the file than in the config: extra keys are named
    deeper = tiny_generator(num_residual_blocks=2).save_pretrained(tmp_path / "deeper")
    (model_dir / "model.safetensors").write_bytes((deeper / "model.safetensors").read_bytes())
    expect_error(WeightsError, lambda: StyleGenerator.from_pretrained(model_dir), "unexpected keys")
    # fewer: missing keys are named
    shallow = tiny_generator(num_residual_blocks=0).save_pretrained(tmp_path / "shallow")
    (model_dir / "model.safetensors").write_bytes((shallow / "model.safetensors").read_bytes())
    expect_error(WeightsError, lambda: StyleGenerator.from_pretrained(model_dir), "missing keys")


def test_vgg_wrong_architecture_and_generator_as_vgg(tmp_path, model_dir):
    vgg19 = write_vgg(tmp_path / "vgg19.safetensors", "vgg19")
    expect_error(WeightsError, lambda: load_vgg_encoder_file(vgg19, arch="vgg16"), vgg19, "vgg19", "vgg16")
    expect_error(WeightsError, lambda: load_vgg_encoder_file(model_dir / "model.safetensors"),
                 "not a VGG16/VGG19")
    # a VGG file given as a style model (config of a generator beside it)
    (model_dir / "model.safetensors").write_bytes(vgg19.read_bytes())
    expect_error(WeightsError, lambda: StyleGenerator.from_pretrained(model_dir), "missing keys")


def test_wrong_dtype(model_dir):
    weights = model_dir / "model.safetensors"
    state = tiny_generator().state_dict()
    save_file({k: (v * 100).to(torch.int32) for k, v in state.items()}, str(weights))
    expect_error(WeightsError, lambda: StyleGenerator.from_pretrained(model_dir), weights, "dtype")
    # half-precision files are a supported format, loaded exactly as saved (then fp32)
    tiny_generator().save_pretrained(model_dir, dtype=torch.float16)
    loaded = StyleGenerator.from_pretrained(model_dir)
    ref = tiny_generator()
    x = synthetic_photo(16, 16)
    assert next(loaded.parameters()).dtype == torch.float32
    with torch.no_grad():
        assert (loaded(x) - ref(x)).abs().max() < 5e-3


# ---- config.json ------------------------------------------------------------------------------
@pytest.mark.parametrize("change, needles", [
    ({"colour": 3}, ["unknown fields", "colour"]),
    ({"base_channels": None}, ["missing fields", "base_channels"]),
    ({"base_channels": -4}, ["base_channels", "at least"]),
    ({"num_residual_blocks": 10**9}, ["num_residual_blocks", "at most"]),
    ({"max_channels": 1e30}, ["max_channels"]),
    ({"base_channels": "4"}, ["base_channels"]),
    ({"base_channels": True}, ["base_channels"]),
    ({"first_kernel": 4}, ["first_kernel", "odd"]),
    ({"norm": "batch"}, ["norm", "instance"]),
])
def test_bad_config_fields(model_dir, change, needles):
    config = model_dir / "config.json"
    data = json.loads(config.read_text())
    for k, v in change.items():
        if v is None:
            data.pop(k)
        else:
            data[k] = v
    config.write_text(json.dumps(data))
    # absurd sizes are refused by validation, before any tensor is allocated
    expect_error(ConfigError, lambda: StyleGenerator.from_pretrained(model_dir), config, *needles)


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", "null", '"x"', "\x00\xff"])
def test_unparsable_config(model_dir, text):
    (model_dir / "config.json").write_bytes(text.encode("latin-1"))
    expect_error(ConfigError, lambda: StyleGenerator.from_pretrained(model_dir), "config.json")


def test_missing_files(model_dir):
    (model_dir / "config.json").unlink()
    expect_error(ConfigError, lambda: style_models.load_style_model(str(model_dir)), "config.json")
    (model_dir / "model.safetensors").unlink()
    expect_error(GanstyleError, lambda: style_models.load_style_model(str(model_dir)), "model.safetensors")


# ---- Hub: checksum mismatch, half-downloaded file ---------------------------------------------
def test_checksum_mismatch_names_file(tmp_path, model_dir):
    cache = tmp_path / "hub"
    weights = model_dir / "model.safetensors"
    snap = fill_hub_cache(cache, "org/style", {"model.safetensors": weights,
                                               "config.json": model_dir / "config.json"})
    registry = {"mystyle": {"kind": "style", "repo_id": "org/style", "sha256": "0" * 64}}
    expect_error(WeightsError, lambda: style_models.load_style_model("mystyle", cache_dir=cache, registry=registry),
                 "checksum mismatch", "model.safetensors", sha256_file(weights))
    assert len(style_models._cache) == 0
    assert not (snap / "model.safetensors").exists()   # evicted (see the next test)
    fill_hub_cache(cache, "org/style", {"model.safetensors": weights})
    registry["mystyle"]["sha256"] = sha256_file(weights)  # the right checksum loads
    model = style_models.load_style_model("mystyle", cache_dir=cache, registry=registry)
    assert model.weights_path == snap / "model.safetensors"


def test_checksum_mismatch_evicts_the_bad_copy(tmp_path, model_dir):
    """A cached file that fails its pinned checksum is deleted (snapshot link and blob), so the
    next call downloads it again instead of failing on the same copy forever."""
    cache = tmp_path / "hub"
    weights = model_dir / "model.safetensors"
    corrupt = bytearray(weights.read_bytes())
    corrupt[-1] ^= 0xFF
    snap = fill_hub_cache(cache, "org/style", {"model.safetensors": bytes(corrupt),
                                               "config.json": model_dir / "config.json"}, blobs=True)
    link = snap / "model.safetensors"
    blob = link.resolve()
    assert link.is_symlink() and blob.parent.name == "blobs"
    registry = {"mystyle": {"kind": "style", "repo_id": "org/style", "sha256": sha256_file(weights)}}
    expect_error(WeightsError, lambda: style_models.load_style_model("mystyle", cache_dir=cache, registry=registry),
                 "checksum mismatch", str(link), "removed from the Hub cache")
    assert not link.exists() and not link.is_symlink() and not blob.exists()
    assert (snap / "config.json").is_file()   # only the bad file goes
    # Offline, the next call now says the file is not cached (online it would download it) ...
    expect_error(WeightsError, lambda: style_models.load_style_model("mystyle", cache_dir=cache, registry=registry),
                 "not in the cache", "model.safetensors")
    # ... and a good download loads.
    fill_hub_cache(cache, "org/style", {"model.safetensors": weights}, blobs=True)
    model = style_models.load_style_model("mystyle", cache_dir=cache, registry=registry)
    assert model.weights_path == link


def test_half_downloaded_hub_file(tmp_path, model_dir):
    cache = tmp_path / "hub"
    data = (model_dir / "model.safetensors").read_bytes()
    snap = fill_hub_cache(cache, "org/half", {"model.safetensors": data[: len(data) // 3],
                                              "config.json": model_dir / "config.json"})
    expect_error(WeightsError, lambda: style_models.load_style_model("org/half", cache_dir=cache),
                 snap / "model.safetensors", "truncated")
    assert len(style_models._cache) == 0


def test_incomplete_blob_only_is_not_used(tmp_path, model_dir):
    """hf_hub_download leaves ``blobs/<sha>.incomplete`` when interrupted; offline, that is 'not
    cached' (with where to put the file), never a model."""
    cache = tmp_path / "hub"
    fill_hub_cache(cache, "org/partial", {"config.json": model_dir / "config.json"})
    blobs = cache / "models--org--partial" / "blobs"
    blobs.mkdir(parents=True)
    data = (model_dir / "model.safetensors").read_bytes()
    (blobs / (sha256_file(model_dir / "model.safetensors") + ".incomplete")).write_bytes(data[:100])
    expect_error(WeightsError, lambda: style_models.load_style_model("org/partial", cache_dir=cache),
                 "model.safetensors", "org/partial", "by hand")
    expect_error(WeightsError, lambda: resolve_weights("org/partial/vgg.safetensors", cache_dir=cache),
                 "vgg.safetensors")


def test_failed_load_then_good_load(model_dir):
    """After a failed load the same path, repaired, loads (nothing stale was cached)."""
    weights = model_dir / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[:100])
    with pytest.raises(WeightsError):
        style_models.load_style_model(str(model_dir))
    weights.write_bytes(good)
    model = style_models.load_style_model(str(model_dir))
    ref = tiny_generator()
    for a, b in zip(model.generator.state_dict().values(), ref.state_dict().values()):
        assert torch.equal(a, b)
