"""Train Style called the way ComfyUI calls it: images in, a style model out (saved in
models/style_transfer), progress with previews, and Cancel that resumes on the next run."""
import pytest
import torch

from ganstyle.core.models import StyleModel
from ganstyle.nodes.train import TrainStyle

from helpers import comfy_call, synthetic_painting, synthetic_photo, tiny_generator

pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.fixture
def images():
    photos = torch.cat([synthetic_photo(48, 64).roll(9 * i, -1) for i in range(3)]).permute(0, 2, 3, 1)
    return photos, synthetic_painting(64, 64).permute(0, 2, 3, 1)


def test_train_style_node_trains_saves_and_returns_a_model(comfy, vgg16, images, monkeypatch):
    import ganstyle.nodes.train as train_node
    monkeypatch.setattr(train_node, "PREVIEW_EVERY", 1)
    photos, painting = images
    base = tiny_generator().save_pretrained(comfy.style_dir / "tiny-base")    # a small start instead of base-fast
    monkeypatch.setattr(train_node, "_start", lambda base_arg: ("", "") if base_arg else (str(base), ""))
    (model,) = comfy_call(TrainStyle, encoder=vgg16, style_images=painting, name="mine", steps=2,
                          content_images=photos, image_size=32)
    assert isinstance(model, StyleModel)
    assert (comfy.style_dir / "mine" / "model.safetensors").is_file()
    assert (comfy.style_dir / "mine" / "README.md").is_file()
    assert [u[0] for u in comfy.updates] == [1, 2] and len(comfy.previews) == 2
    out = model.generator(synthetic_photo(32, 32))
    assert out.shape == (1, 3, 32, 32)


def test_train_style_on_a_library_trains_a_style_file_with_the_new_style_defaults(comfy, vgg16, images):
    """With base (a style library) only the new style's norm parameters train, with NEW_STYLE_DEFAULTS,
    and the run leaves a style file that the library takes."""
    import json

    from ganstyle.core.style_files import add_styles
    from ganstyle.core.training.config import NEW_STYLE_DEFAULTS

    from helpers import tiny_library

    photos, painting = images
    library = tiny_library()
    lib_dir = library.save_pretrained(comfy.style_dir / "tiny-library")
    comfy_call(TrainStyle, encoder=vgg16, style_images=painting, name="frost", steps=2, content_images=photos,
               image_size=32, base=str(lib_dir))
    run = comfy.style_dir / "frost.run"
    options = json.loads((run / "options.json").read_text())
    assert {key: options[key] for key in NEW_STYLE_DEFAULTS} == NEW_STYLE_DEFAULTS
    assert add_styles(library, [run / "style"]).style_names == ["ink", "oil", "chalk", "frost"]


def test_cancel_keeps_a_checkpoint_and_the_next_run_continues(comfy, vgg16, images, monkeypatch):
    import ganstyle.nodes.train as train_node
    photos, painting = images
    base = tiny_generator().save_pretrained(comfy.style_dir / "tiny-base")
    monkeypatch.setattr(train_node, "_start", lambda base_arg: (str(base), ""))
    comfy.interrupt_after = 2           # Cancel during the third step's check
    with pytest.raises(Exception, match="interrupted"):
        comfy_call(TrainStyle, encoder=vgg16, style_images=painting, name="again", steps=4,
                   content_images=photos, image_size=32)
    assert list((comfy.style_dir / "again.run" / "checkpoints").iterdir())
    comfy.interrupt_after = None
    comfy.updates.clear()
    comfy_call(TrainStyle, encoder=vgg16, style_images=painting, name="again", steps=4, content_images=photos,
               image_size=32)
    assert comfy.updates[0][0] == 4 and (comfy.style_dir / "again" / "model.safetensors").is_file()


def test_train_style_needs_photos(comfy, vgg16, images):
    _, painting = images
    with pytest.raises(ValueError, match="give photos to learn on"):
        comfy_call(TrainStyle, encoder=vgg16, style_images=painting, name="x", steps=1)
