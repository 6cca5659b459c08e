import json
import os

import pytest
import torch

from ganstyle.core.errors import ConfigError, WeightsError
from ganstyle.core.generator import StyleGenerator
from ganstyle.core.models import (
    cached_hub_style_models,
    default_style_model,
    load_style_model,
    local_style_models,
    locate_style_model,
)

from helpers import fill_hub_cache, tiny_config, tiny_generator


@pytest.fixture
def model_dir(tmp_path):
    return tiny_generator().save_pretrained(tmp_path / "mystyle")


def _reference(folder):
    return StyleGenerator.from_pretrained(folder)


def _same_output(a, b):
    x = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))


def test_folder_and_file_references(model_dir, tmp_path):
    m = load_style_model(str(model_dir))
    _same_output(m.generator, _reference(model_dir))
    assert m.name == "mystyle" and m.weights_path == model_dir / "model.safetensors"
    assert not m.generator.training and m.dtype == torch.float32
    assert load_style_model(str(model_dir / "model.safetensors")).weights_path == model_dir / "model.safetensors"
    # ComfyUI style: name.safetensors + name.json side by side in models/style_transfer
    comfy = tmp_path / "models" / "style_transfer"
    comfy.mkdir(parents=True)
    (comfy / "ink.safetensors").write_bytes((model_dir / "model.safetensors").read_bytes())
    (comfy / "ink.json").write_text((model_dir / "config.json").read_text())
    m2 = load_style_model("ink.safetensors", search_dirs=[comfy])
    assert m2.name == "ink" and m2.config_path == comfy / "ink.json"
    _same_output(m2.generator, m.generator)
    os.symlink(model_dir, comfy / "linked")
    assert local_style_models([comfy]) == ["ink.safetensors", "linked"]
    assert load_style_model("linked", search_dirs=[comfy]).source.endswith("linked")


def test_registry_shipped_entry_and_default(model_dir):
    registry = {"vgg19": {"kind": "vgg", "repo_id": "timm/vgg19.tv_in1k"},
                "a": {"kind": "style", "path": str(model_dir), "license": "cc0-1.0"},
                "b": {"kind": "style", "path": str(model_dir / "model.safetensors"), "default": True}}
    m = load_style_model("a", registry=registry)
    assert m.source == "registry:a" and m.license == "cc0-1.0"
    _same_output(m.generator, _reference(model_dir))
    assert load_style_model("b", registry=registry).weights_path == model_dir / "model.safetensors"
    assert default_style_model(registry) == "b"
    del registry["b"]["default"]
    assert default_style_model(registry) == "a"
    assert default_style_model({"vgg19": registry["vgg19"]}) is None
    with pytest.raises(WeightsError, match="'vgg19' is a vgg model, not a style model"):
        load_style_model("vgg19", registry=registry)


def _fill(cache, repo, model_dir, revision="main", commit="1" * 40):
    return fill_hub_cache(cache, repo, {"model.safetensors": model_dir / "model.safetensors",
                                        "config.json": model_dir / "config.json"}, revision=revision, commit=commit)


def test_hub_repo_with_revision_from_offline_cache(model_dir, tmp_path):
    cache = tmp_path / "hub"
    snap = _fill(cache, "someone/ink-style", model_dir, revision="v1")
    m = load_style_model("someone/ink-style@v1", cache_dir=cache)
    assert m.source == "hub:someone/ink-style@v1" and m.weights_path.parent == snap
    _same_output(m.generator, _reference(model_dir))
    with pytest.raises(WeightsError, match=r"HF_HUB_OFFLINE is set and the file is not in the cache.*"
                                           r"model.safetensors and config.json by hand from "
                                           r"https://huggingface.co/someone/ink-style/tree/v2 .*--model FOLDER"):
        load_style_model("someone/ink-style@v2", cache_dir=cache)
    listed = cached_hub_style_models(cache)
    assert [(e["repo_id"], e["revisions"]) for e in listed] == [("someone/ink-style", ["v1"])]


def test_registry_hub_entry_fetches_config_too(model_dir, tmp_path):
    cache = tmp_path / "hub"
    _fill(cache, "org/shipped-style", model_dir, revision="r1")
    registry = {"ink": {"kind": "style", "repo_id": "org/shipped-style", "revision": "r1", "license": "mit"}}
    m = load_style_model("ink", cache_dir=cache, registry=registry)
    assert m.config_path.name == "config.json" and m.config_path.is_file() and m.license == "mit"
    # only the weights cached, no config: a clear error, not a crash later
    fill_hub_cache(cache, "org/half", {"model.safetensors": model_dir / "model.safetensors"}, commit="2" * 40)
    with pytest.raises(WeightsError, match="cannot get 'config.json' from Hub repo 'org/half'"):
        load_style_model("x", cache_dir=cache, registry={"x": {"kind": "style", "repo_id": "org/half"}})


def test_cache_reuses_and_reloads_on_change(model_dir):
    a = load_style_model(str(model_dir))
    assert load_style_model(str(model_dir)).generator is a.generator
    assert load_style_model(str(model_dir / "model.safetensors")).generator is a.generator
    assert load_style_model(str(model_dir), dtype=torch.bfloat16).generator is not a.generator
    assert load_style_model(str(model_dir), use_cache=False).generator is not a.generator
    tiny_generator(seed=5).save_pretrained(model_dir)  # retrained in place: new mtime
    st = (model_dir / "model.safetensors").stat()
    os.utime(model_dir / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    b = load_style_model(str(model_dir))
    assert b.generator is not a.generator
    assert not torch.equal(a.generator.head[1].weight, b.generator.head[1].weight)


def test_bad_models_give_clear_errors(model_dir, tmp_path):
    data = json.loads((model_dir / "config.json").read_text())
    data["depth"] = 3
    (model_dir / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"config.json: unknown fields \['depth'\]"):
        load_style_model(str(model_dir))
    del data["depth"], data["norm"]
    (model_dir / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"missing fields \['norm'\]"):
        load_style_model(str(model_dir))

    lonely = tmp_path / "lonely.safetensors"
    lonely.write_bytes(b"\0" * 16)
    with pytest.raises(ConfigError, match=r"lonely.safetensors: no config for these weights.*lonely.json"):
        load_style_model(str(lonely))
    pickle = tmp_path / "old.pth"
    pickle.write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(WeightsError, match="pickles, which ganstyle never loads"):
        load_style_model(str(pickle))

    good = StyleGenerator(tiny_config()).save_pretrained(tmp_path / "truncated")
    raw = (good / "model.safetensors").read_bytes()
    (good / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(WeightsError, match="truncated"):
        load_style_model(str(good))
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="no model.safetensors in this folder"):
        locate_style_model(str(tmp_path / "empty"))
    with pytest.raises(WeightsError, match="cannot resolve weights reference 'nothing-here'"):
        load_style_model("nothing-here")


def test_lone_downloaded_weights_say_which_config_and_where(model_dir, tmp_path):
    """A model.safetensors downloaded without its config.json: the error names the config.json to get
    and where it goes; with it beside the file, the model loads."""
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    lone = downloads / "model.safetensors"
    lone.write_bytes((model_dir / "model.safetensors").read_bytes())
    with pytest.raises(ConfigError) as e:
        load_style_model(str(lone))
    msg = str(e.value)
    assert "config.json" in msg and f"beside the file as {downloads / 'config.json'}" in msg
    (downloads / "config.json").write_bytes((model_dir / "config.json").read_bytes())
    _same_output(load_style_model(str(lone)).generator, _reference(model_dir))

    # fetched alone into the Hugging Face cache: the exact Hub file is named
    snap = fill_hub_cache(tmp_path / "cache", "org/ink", {"model.safetensors": model_dir / "model.safetensors"})
    with pytest.raises(ConfigError) as e:
        load_style_model(str(snap / "model.safetensors"))
    msg = str(e.value)
    assert f"https://huggingface.co/org/ink/blob/{snap.name}/config.json" in msg
    assert f"beside the file as {snap / 'config.json'}" in msg and "Hub repo 'org/ink'" in msg


def test_training_run_folder_is_a_model_reference(model_dir, tmp_path):
    """`--model RUN_DIR` works as `ganstyle push RUN_DIR` does: the run's exported model/ is used."""
    run = tmp_path / "runs" / "painting"
    tiny_generator().save_pretrained(run / "model")
    (run / "options.json").write_text("{}")
    m = load_style_model(str(run))
    assert m.weights_path == run / "model" / "model.safetensors" and m.source == str(run / "model")
    _same_output(m.generator, _reference(model_dir))
    assert locate_style_model("painting", search_dirs=[tmp_path / "runs"]).weights_path == m.weights_path
