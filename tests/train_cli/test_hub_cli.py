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
