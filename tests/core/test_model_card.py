from ganstyle.core.model_card import TrainingFacts, model_card

from helpers import tiny_generator


def test_one_writer_for_hub_and_trained_models():
    generator = tiny_generator()
    hub = model_card("x", generator, images={"samples.png": "sample"}, reference="me/x", options_file=True)
    assert hub.startswith("---\nlibrary_name: ganstyle\n") and "(`tiny` preset," in hub
    assert "![sample](samples.png)" in hub and "--model me/x" in hub and "hub_repo `me/x`" in hub
    assert "[`options.json`](options.json)" in hub and "## Training" not in hub

    facts = TrainingFacts(steps=4, global_batch=2, world_size=1, image_size=32, device="cpu", precision="fp32",
                          minutes=0.5, encoder="vgg16 `abc`", data={"content": "4 image(s)", "style": "1 image(s)"},
                          final_losses={"style": 1.23456}, options={"steps": 4, "preset": "fast"})
    trained = model_card("run", generator, images={"samples.png": "samples"}, training=facts)
    assert "for 4 steps" in trained and "models/style_transfer/" in trained
    assert "| style | 1.235 |" in trained and "| `steps` | `4` |" in trained and "| `preset` | `fast` |" in trained
    assert "options.json" not in trained
