import hashlib

import pytest

from ganstyle.core.errors import WeightsError
from ganstyle.core.hub import parse_hub_ref, resolve_weights

from helpers import cut_network, fill_hub_cache


def registry(sha=None):
    return {"myvgg": {"kind": "vgg", "arch": "vgg16", "repo_id": "org/vgg-test", "filename": "model.safetensors",
                      "revision": "main", "sha256": sha, "license": "mit"}}


def test_parse_hub_ref():
    assert parse_hub_ref("org/name") == ("org/name", None, None)
    assert parse_hub_ref("hf://org/name/sub/w.safetensors@v1.0") == ("org/name", "sub/w.safetensors", "v1.0")
    assert parse_hub_ref("not a ref") is None


def test_registry_entry_served_from_offline_cache(vgg16_file, tmp_path):
    cache = tmp_path / "cache"
    snap = fill_hub_cache(cache, "org/vgg-test", {"model.safetensors": vgg16_file})
    r = resolve_weights("myvgg", cache_dir=cache, registry=registry())
    assert r.path == snap / "model.safetensors" and r.arch == "vgg16" and r.license == "mit"


def test_pinned_sha256_verified(vgg16_file, tmp_path):
    cache = tmp_path / "cache"
    fill_hub_cache(cache, "org/vgg-test", {"model.safetensors": vgg16_file})
    good = hashlib.sha256(vgg16_file.read_bytes()).hexdigest()
    assert resolve_weights("myvgg", cache_dir=cache, registry=registry(good)).path.is_file()
    with pytest.raises(WeightsError, match=r"model\.safetensors: checksum mismatch.*expected 0000"):
        resolve_weights("myvgg", cache_dir=cache, registry=registry("0" * 64))


def test_offline_not_cached_says_where_to_put_file(tmp_path):
    with pytest.raises(WeightsError) as e:
        resolve_weights("myvgg", cache_dir=tmp_path / "empty", registry=registry(),
                        search_dirs=[tmp_path / "models" / "vgg"])
    msg = str(e.value)
    assert "HF_HUB_OFFLINE" in msg and "org/vgg-test" in msg
    assert "https://huggingface.co/org/vgg-test/blob/main/model.safetensors" in msg
    assert str(tmp_path / "models" / "vgg") in msg


def test_hub_ref_with_revision(vgg16_file, tmp_path):
    cache = tmp_path / "cache"
    fill_hub_cache(cache, "someone/vgg", {"weights/vgg.safetensors": vgg16_file}, revision="v2",
                   commit="f" * 40)
    r = resolve_weights("someone/vgg/weights/vgg.safetensors@v2", cache_dir=cache, registry={})
    assert r.path.name == "vgg.safetensors" and "@v2" in r.source


def test_local_path_and_search_dirs(vgg16_file, tmp_path):
    assert resolve_weights(str(vgg16_file), registry={}).path == vgg16_file
    r = resolve_weights("vgg16.safetensors", registry={}, search_dirs=[vgg16_file.parent])
    assert r.path == vgg16_file


def test_unresolvable_and_pickle(tmp_path):
    with pytest.raises(WeightsError, match="cannot resolve weights reference 'nope'"):
        resolve_weights("nope", registry={})
    with pytest.raises(WeightsError, match=r"\.pth.*never"):
        resolve_weights(str(tmp_path / "x.pth"), registry={})
    with pytest.raises(WeightsError, match="empty"):
        resolve_weights("  ", registry={})


def test_shipped_registry_lists_vgg19_default():
    from ganstyle.core.hub import load_registry
    reg = load_registry()
    assert reg["vgg19"]["repo_id"] == "timm/vgg19.tv_in1k" and reg["vgg16"]["arch"] == "vgg16"


def test_unreachable_hub_fails_at_once_with_one_message(monkeypatch, tmp_path, caplog):
    """No network: one clear error within seconds, not 5 retries (~25 s of 'Retrying in 8s' lines)."""
    import time

    from ganstyle.core.hub import HubUnreachableError

    endpoint = cut_network(monkeypatch)
    start = time.perf_counter()
    with pytest.raises(HubUnreachableError) as e:
        resolve_weights("myvgg", cache_dir=tmp_path / "empty", registry=registry())
    assert time.perf_counter() - start < 5
    msg = str(e.value)
    assert "cannot be reached" in msg and endpoint in msg and "not in the cache" in msg
    assert "https://huggingface.co/org/vgg-test/blob/main/model.safetensors" in msg
    assert "--encoder FILE" in msg and ".." not in msg
    assert "Retrying" not in caplog.text and "thrown while requesting" not in caplog.text


def test_unreachable_hub_still_serves_the_cache(vgg16_file, monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    snap = fill_hub_cache(cache, "org/vgg-test", {"model.safetensors": vgg16_file})
    cut_network(monkeypatch)
    assert resolve_weights("myvgg", cache_dir=cache, registry=registry()).path == snap / "model.safetensors"


def test_unreachable_hub_style_model_names_the_model_flag(monkeypatch, tmp_path):
    import time

    cut_network(monkeypatch)
    start = time.perf_counter()
    with pytest.raises(WeightsError) as e:
        resolve_weights("org/painting@v1", kind="style", cache_dir=tmp_path / "empty", registry={})
    assert time.perf_counter() - start < 5
    msg = str(e.value)
    assert "https://huggingface.co/org/painting/tree/v1" in msg and "--model FOLDER" in msg
    assert "config.json" in msg and ".." not in msg


def test_unknown_encoder_lists_only_vgg_names():
    reg = {**registry(), "mystyle": {"kind": "style", "path": "x"}, "mybase": {"kind": "base", "path": "y"}}
    with pytest.raises(WeightsError, match=r"not a vgg registry name \(myvgg\)") as e:
        resolve_weights("nope", registry=reg)
    assert "mystyle" not in str(e.value) and "mybase" not in str(e.value)
    with pytest.raises(WeightsError, match=r"not a style registry name \(mybase, mystyle\)"):
        resolve_weights("nope", kind="style", registry=reg)
