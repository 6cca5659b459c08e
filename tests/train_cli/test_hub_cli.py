import json
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from ganstyle.train_cli.__main__ import main

from helpers import fill_hub_cache, tiny_generator


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    tiny_generator().save_pretrained(run / "model")
    (run / "options.json").write_text(json.dumps({"steps": 10}))
    return run


def test_push_records_upload(run_dir, monkeypatch, capsys):
    calls = []
    def create_repo(self, repo_id, **kw):
        calls.append(("create_repo", repo_id, kw))
        return f"https://huggingface.co/{repo_id}"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_branch",
                        lambda self, repo_id, **kw: calls.append(("create_branch", repo_id, kw)))

    def upload_folder(self, **kw):
        calls.append(("upload_folder", sorted(p.name for p in Path(kw["folder_path"]).iterdir()), kw["revision"]))

    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    assert main(["push", str(run_dir), "--repo", "me/ink", "--private", "--revision", "exp",
                 "--license", "mit", "--message", "first"]) == 0
    assert calls[0][:2] == ("create_repo", "me/ink") and calls[0][2]["private"] is True
    assert calls[1][2]["branch"] == "exp"
    assert calls[2] == ("upload_folder", ["README.md", "config.json", "model.safetensors", "options.json"], "exp")
    assert "to me/ink@exp: https://huggingface.co/me/ink" in capsys.readouterr().out
    calls.clear()
    assert main(["push", str(run_dir), "--repo", "me/ink"]) == 2  # no license: refused
    assert "no license" in capsys.readouterr().err and calls == []


def test_pull_and_models(run_dir, tmp_path, capsys):
    cache = tmp_path / "cache"
    model = run_dir / "model"
    snap = fill_hub_cache(cache, "me/ink", {"model.safetensors": model / "model.safetensors",
                                            "config.json": model / "config.json"}, revision="v1")
    assert main(["pull", "me/ink", "--revision", "v1", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "tiny preset" in out and out.strip().endswith(str(snap))
    assert main(["pull", "me/ink@v9", "--cache-dir", str(cache)]) == 2
    assert "HF_HUB_OFFLINE is set" in capsys.readouterr().err

    local = tmp_path / "style_transfer"
    tiny_generator(seed=1).save_pretrained(local / "mine")
    assert main(["models", "--cache-dir", str(cache), "--dir", str(local), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {e["name"]: e["status"] for e in info["registry"]}["vgg19"] == "not downloaded"
    assert [m["repo_id"] for m in info["hub_cache"]] == ["me/ink"]
    assert info["local"] == {str(local): ["mine"]}
    assert main(["models", "--cache-dir", str(cache)]) == 0
    text = capsys.readouterr().out
    assert "vgg19" in text and "me/ink" in text and "v1" in text


def test_a_pulled_style_file_adds_its_style_to_the_library(tmp_path, capsys):
    """`ganstyle pull` of a style file's repo prints how to use it; `stylize --styles-from ORG/NAME`
    adds that style from the Hub cache (offline here) and stylises with it."""
    import torch

    from ganstyle.core.images import load_image, save_image
    from ganstyle.core.style_files import save_style_file

    from helpers import synthetic_photo, tiny_library

    library = tiny_library()
    lib_dir = library.save_pretrained(tmp_path / "lib")
    new_style = library.mixed(torch.tensor([0.0, 0.2, 0.8]))
    style_dir = save_style_file(new_style, tmp_path / "run" / "style", {"name": "stripes"}, library,
                                base_name=str(lib_dir))
    cache = tmp_path / "cache"
    snap = fill_hub_cache(cache, "me/stripes", {p.name: p for p in style_dir.iterdir()})
    assert main(["pull", "me/stripes", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert f"stripes: a style file for {lib_dir}; use it with --model {lib_dir} --styles-from me/stripes" in out
    assert out.strip().endswith(str(snap))

    photo = tmp_path / "photo.png"
    save_image(synthetic_photo(24, 32)[0], photo)
    result = tmp_path / "out.png"
    assert main(["stylize", str(photo), "-o", str(result), "--model", str(lib_dir), "--styles-from", "me/stripes",
                 "--style", "stripes", "--cache-dir", str(cache), "--device", "cpu", "--dtype", "fp32"]) == 0
    torch.testing.assert_close(load_image(result), new_style(load_image(photo)), atol=1.5 / 255, rtol=0)
    assert main(["stylize", str(photo), "-o", str(tmp_path / "x.png"), "--model", str(lib_dir), "--styles-from",
                 "me/nowhere", "--style", "stripes", "--cache-dir", str(cache)]) == 2
    assert "cannot get 'style.json' from Hub repo 'me/nowhere'" in capsys.readouterr().err
