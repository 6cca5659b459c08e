"""Two stylisations with different models at once on one device give the same results as one
at a time: no shared mutable state in the model cache or the inference engine."""
from __future__ import annotations

import threading

import torch

from ganstyle.core import models as style_models
from ganstyle.core.stylize import stylize

from helpers import synthetic_photo, tiny_generator


def test_two_models_in_two_threads_match_sequential(tmp_path):
    style_models.clear_cache()
    for seed in (0, 1):
        tiny_generator(seed).save_pretrained(tmp_path / f"m{seed}")
    a = style_models.load_style_model(str(tmp_path / "m0"))
    b = style_models.load_style_model(str(tmp_path / "m1"))
    images = [synthetic_photo(96, 80, seed=0), synthetic_photo(64, 100, seed=1).flip(-1)]
    runs = {
        # whole image, forced tiles (norm statistics travel in a context variable), fp32/bf16 copies
        "whole": dict(tile=None, dtype="fp32"),
        "tiled": dict(tile=64, overlap=8, dtype="fp32"),
        "bf16": dict(tile=None, dtype="bf16"),
    }
    jobs = [(m, x, name) for m in (a, b) for x in images for name in runs]
    sequential = [stylize(m, x, strength=0.9, color_mode="luminance", **runs[name]) for m, x, name in jobs]

    results: dict[int, torch.Tensor] = {}
    errors = []
    barrier = threading.Barrier(2)

    def worker(indices):
        try:
            barrier.wait()
            for _ in range(2):
                for i in indices:
                    m, x, name = jobs[i]
                    # each thread re-loads through the cache, as two ComfyUI queue workers would
                    model = style_models.load_style_model(str(m.weights_path.parent))
                    results.setdefault(i, []).append(stylize(model, x, strength=0.9, color_mode="luminance",
                                                             **runs[name]))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    half = len(jobs) // 2
    threads = [threading.Thread(target=worker, args=(range(0, half),)),
               threading.Thread(target=worker, args=(range(half, len(jobs)),))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for i, expected in enumerate(sequential):
        for got in results[i]:
            assert torch.equal(got, expected), jobs[i][2]
    # the models themselves were not modified
    assert not torch.equal(sequential[0], sequential[len(images) * len(runs)])
    ref = tiny_generator(seed=0)
    for k, v in ref.state_dict().items():
        assert torch.equal(a.generator.state_dict()[k], v)
    style_models.clear_cache()
