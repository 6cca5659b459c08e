import json
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi

from ganstyle.core.errors import ConfigError, InputError, WeightsError
from ganstyle.core.generator import StyleGenerator
from ganstyle.core.images import save_image
from ganstyle.core.sharing import push_to_hub

from helpers import tiny_generator

TRAINER_CARD = """---
library_name: ganstyle
pipeline_tag: image-to-image
tags:
- style-transfer
---

# painting

![samples: style on the first row, then content | stylised](samples.png)

| option | value |
|---|---|
| `steps` | `2000` |
"""


def make_run(root: Path, card: str | None = TRAINER_CARD) -> Path:
    """A finished training run as the trainer lays it out: options.json + model/."""
    model = tiny_generator().save_pretrained(root / "model")
    save_image(torch.rand(3, 16, 16), model / "samples.png")
    if card is not None:
        (model / "README.md").write_text(card)
    (root / "options.json").write_text(json.dumps({"steps": 2000, "preset": "fast"}))
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "big.safetensors").write_bytes(b"0" * 100)
    return root


class RecordingHub:
    """Replaces the network edge: HfApi's create_repo / create_branch / upload_folder record their
    arguments and snapshot the folder being uploaded (it is a temporary folder)."""

    def __init__(self, monkeypatch):
        self.calls, self.uploaded = [], {}
        hub = self

        def create_repo(self, repo_id, **kw):
            hub.calls.append(("create_repo", repo_id, kw))
            return f"https://huggingface.co/{repo_id}"

        def create_branch(self, repo_id, **kw):
            hub.calls.append(("create_branch", repo_id, kw))

        def upload_folder(self, **kw):
            hub.calls.append(("upload_folder", kw["repo_id"], kw))
            hub.uploaded = {p.name: p.read_bytes() for p in Path(kw["folder_path"]).iterdir()}
            return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{kw['repo_id']}/commit/abc"})()

        monkeypatch.setattr(HfApi, "create_repo", create_repo)
        monkeypatch.setattr(HfApi, "create_branch", create_branch)
        monkeypatch.setattr(HfApi, "upload_folder", upload_folder)


@pytest.fixture
def hub(monkeypatch):
    return RecordingHub(monkeypatch)


def test_push_run_folder(hub, tmp_path):
    run = make_run(tmp_path / "run")
    result = push_to_hub(run, "me/painting-style", private=True, revision="v1", license="cc-by-4.0")
    assert [c[0] for c in hub.calls] == ["create_repo", "create_branch", "upload_folder"]
    assert hub.calls[0][2]["private"] is True and hub.calls[0][2]["exist_ok"] is True
    assert hub.calls[1][2]["branch"] == "v1"
    assert hub.calls[2][2]["revision"] == "v1"
    assert sorted(hub.uploaded) == ["README.md", "config.json", "model.safetensors", "options.json", "samples.png"]
    assert result.url.endswith("/commit/abc") and result.revision == "v1"
    card = hub.uploaded["README.md"].decode()
    assert card.startswith("---\n") and "license: cc-by-4.0" in card and "- comfyui" in card
    assert "| `steps` | `2000` |" in card  # the trainer's card body is kept
    assert hub.uploaded["model.safetensors"] == (run / "model" / "model.safetensors").read_bytes()
    # what was uploaded loads back into the same model
    up = tmp_path / "uploaded"
    up.mkdir()
    for name, data in hub.uploaded.items():
        (up / name).write_bytes(data)
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(StyleGenerator.from_pretrained(up)(x), StyleGenerator.from_pretrained(run / "model")(x))


def test_push_model_folder_without_card_generates_one(hub, tmp_path):
    run = make_run(tmp_path / "run", card=None)
    push_to_hub(run / "model", "me/x", license="mit")
    assert [c[0] for c in hub.calls] == ["create_repo", "upload_folder"]
    assert hub.calls[1][2]["revision"] is None and hub.calls[0][2]["private"] is False
    card = hub.uploaded["README.md"].decode()
    assert "license: mit" in card and "![sample](samples.png)" in card and "--model me/x" in card


def test_push_refuses_before_any_upload(hub, tmp_path):
    run = make_run(tmp_path / "run")
    with pytest.raises(ConfigError, match="no license"):
        push_to_hub(run, "me/x")
    (run / "model" / "README.md").write_text(TRAINER_CARD.replace("samples.png", "grid.png"))
    with pytest.raises(ConfigError, match=r"shows \['grid.png'\] but no such file"):
        push_to_hub(run, "me/x", license="mit")
    with pytest.raises(InputError, match="is not of the form 'org/name'"):
        push_to_hub(run, "just-a-name", license="mit")
    data = json.loads((run / "model" / "config.json").read_text())
    data["base_channels"] = 6
    (run / "model" / "config.json").write_text(json.dumps(data))
    with pytest.raises(WeightsError, match="has shape"):
        push_to_hub(run, "me/x", license="mit")
    with pytest.raises(WeightsError, match="no model.safetensors"):
        push_to_hub(tmp_path, "me/x", license="mit")
    assert hub.calls == []


def make_style_run(root: Path):
    """A finished 'ganstyle train --base' run: model/ (the new style as a model) and style/ (its style file)."""
    from ganstyle.core.style_files import save_style_file

    from helpers import tiny_library

    library = tiny_library()
    new_style = library.mixed(torch.tensor([0.2, 0.3, 0.5]))
    new_style.save_pretrained(root / "model")
    save_style_file(new_style, root / "style", {"name": "stripes", "licence": "CC0", "author": "me"}, library,
                    base_name="me/library")
    (root / "options.json").write_text(json.dumps({"steps": 300, "base": "me/library"}))
    return library, new_style


def test_a_style_file_goes_to_the_hub_and_comes_back_through_the_cache(hub, tmp_path):
    """A --base run pushes its style file (kilobytes, with a card saying how to use it); what was
    uploaded, laid out as the Hub cache holds it, is found offline by its repo name and adds the
    same style to the library."""
    from ganstyle.core.style_files import add_styles, locate_style_file

    from helpers import fill_hub_cache, synthetic_photo

    library, new_style = make_style_run(tmp_path / "run")
    result = push_to_hub(tmp_path / "run", "me/stripes", license="cc0-1.0")
    assert sorted(hub.uploaded) == ["README.md", "options.json", "style.json", "style.safetensors"]
    assert result.files[:2] == ["style.safetensors", "style.json"]
    assert "style file" in hub.calls[-1][2]["commit_message"]
    card = hub.uploaded["README.md"].decode()
    assert "license: cc0-1.0" in card and "# stripes" in card and "- comfyui" in card
    assert "--model me/library --styles-from me/stripes --style stripes" in card
    assert len(hub.uploaded["style.safetensors"]) < 4096

    cache = tmp_path / "cache"
    snapshot = fill_hub_cache(cache, "me/stripes", dict(hub.uploaded), blobs=True)
    folder = locate_style_file("me/stripes", cache_dir=cache)
    assert folder == snapshot
    grown = add_styles(library, [folder])
    x = synthetic_photo(20, 28)
    torch.testing.assert_close(grown(x, torch.tensor([[0.0, 0.0, 0.0, 1.0]])), new_style(x), atol=1e-6, rtol=0)
    # a local run folder and the style folder itself name the same style file
    assert locate_style_file(tmp_path / "run") == locate_style_file(tmp_path / "run" / "style") == \
        tmp_path / "run" / "style"
    with pytest.raises(WeightsError, match="no style file here"):
        locate_style_file(tmp_path / "run" / "model")
    with pytest.raises(WeightsError, match="HF_HUB_OFFLINE is set"):
        locate_style_file("me/elsewhere", cache_dir=cache)


def test_a_broken_style_file_is_refused_before_any_upload(hub, tmp_path):
    make_style_run(tmp_path / "run")
    (tmp_path / "run" / "style" / "style.json").write_text("{not json")
    with pytest.raises(WeightsError, match="style.json: not valid JSON"):
        push_to_hub(tmp_path / "run", "me/stripes", license="mit")
    assert hub.calls == []
