"""Model cards: the ``README.md`` of a style model folder (Hugging Face model-card format).

One writer, :func:`model_card`, for the card the trainer exports with its model and for the card
``ganstyle push`` writes for a model folder that has none; :func:`style_file_card` for a style
file (one style for a style library, ``ganstyle train --base``).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

TAGS = ("style-transfer", "ganstyle", "comfyui")


@dataclass(kw_only=True)
class TrainingFacts:
    """What the card says about how a model was trained (see :meth:`Trainer.training_facts`)."""
    steps: int
    global_batch: int
    world_size: int
    image_size: int
    device: str
    precision: str
    minutes: float
    encoder: str                      # architecture and identity of the loss encoder
    data: Mapping[str, str]           # {"content": description, "style": description}
    final_losses: Mapping[str, float]
    options: Mapping[str, Any]


def describe_images(count: int, skipped: int, sources: Sequence[str]) -> str:
    """'4 image(s) from `photos`, 1 unreadable file(s) skipped' (only the sources' last components).

    >>> describe_images(2, 0, ["/home/me/style.png"])
    '2 image(s) from `style.png`'
    """
    note = f", {skipped} unreadable file(s) skipped" if skipped else ""
    return f"{count} image(s) from {', '.join(f'`{Path(s).name}`' for s in sources)}{note}"


def model_card(name: str, generator: torch.nn.Module, *, images: Mapping[str, str],
               reference: str | None = None, training: TrainingFacts | None = None,
               options_file: bool = False) -> str:
    """The card of a model called ``name``.

    images: {file in the model folder: alt text}; reference: how users load it (a Hub repo id;
    None: a path to the folder); training: facts of the run that made it; options_file: the
    folder holds the run's ``options.json``.
    """
    params = sum(p.numel() for p in generator.parameters())
    ref = reference or "path/to/this/folder"
    made = (f"\ntrained with `ganstyle train` for {training.steps} steps{_start(training.options)}: "
            f"{_losses(training.options)}, exported as the EMA of the generator weights." if training else ".")
    shown = "\n".join(f"![{alt}]({file})" for file, alt in images.items())
    options = "\nThe training options are in [`options.json`](options.json).\n" if options_file and not training else ""
    comfy = (f"In ComfyUI: **Load GAN Style Model** with hub_repo `{reference}`, then **GAN Stylize**." if reference
             else "In ComfyUI, put this folder in `models/style_transfer/`.")
    tags = "\n".join(f"- {t}" for t in TAGS)
    return f"""---
library_name: ganstyle
pipeline_tag: image-to-image
tags:
{tags}
---

# {name}

A feed-forward style-transfer generator for [ganstyle](https://github.com/ganstyle/ganstyle)
(`{generator.config.preset}` preset, {params:,} parameters){made}

{shown}
{options}
## Use
{_use(generator, ref)}
{comfy}
{_styles_section(generator)}{_arbitrary_section(generator, ref)}{_training_section(training) if training else ""}"""


_LOSS_NAMES = {"lambda_content": "content (relu4_2)", "lambda_style": "Gram style", "lambda_tone": "tone",
               "lambda_tv": "total variation", "lambda_pixel": "pixel (L1 to the photo)",
               "lambda_warp": "warp/noise robustness", "lambda_adv": "PatchGAN adversarial"}


def style_file_card(record: Mapping[str, str], *, reference: str, images: Mapping[str, str]) -> str:
    """The card of a style file: ``record`` is its ``style.json`` (name, source, licence, author,
    base, base_fingerprint); ``reference`` how users load it (a Hub repo id); ``images``: {file: alt}.

    >>> print(style_file_card({"name": "ink", "base": "library-fast", "base_fingerprint": "ab12"},
    ...                       reference="me/ink", images={}).splitlines()[0])
    # ink
    """
    name, base = record["name"], record.get("base") or "the style library it was trained on"
    shown = "\n".join(f"![{alt}]({file})" for file, alt in images.items())
    about = "\n".join(f"| {key} | {record[key]} |" for key in ("source", "licence", "author") if record.get(key))
    table = f"\n| | |\n|---|---|\n{about}\n" if about else ""
    model = record.get("base") or "LIBRARY"
    return f"""# {name}

A style file for the ganstyle style library `{base}`: the instance-norm scales and shifts of one
new style (a few KB), trained with `ganstyle train --base {model}` on the library's frozen
convolutions. It only fits that library (shared weights `{record.get("base_fingerprint", "unknown")}`).
{table}
{shown}

## Use

    ganstyle stylize photo.jpg --model {model} --styles-from {reference} --style {name}

In ComfyUI: **Load GAN Style Model** with model `{model}` and styles_from `{reference}`, then
**GAN Stylize** with style `{name}`.
"""


def _losses(options: Mapping[str, Any]) -> str:
    """The losses a run used (non-zero weights), e.g. 'content (relu4_2) + Gram style losses'.

    >>> _losses({"lambda_content": 5.0, "lambda_style": 0.0, "lambda_pixel": 10.0})
    'content (relu4_2) + pixel (L1 to the photo) losses'
    """
    used = [name for key, name in _LOSS_NAMES.items() if options.get(key, 0)]
    return (" + ".join(used) or "no") + " losses"


def _styles_section(generator: torch.nn.Module) -> str:
    """For a style library: a table of its styles (pass one as ``--style NAME``)."""
    styles = getattr(generator.config, "styles", ())
    if not styles:
        return ""
    rows = "\n".join(f"| `{s['name']}` | {s.get('source', '')} | {s.get('author', '')} | {s.get('licence', '')} |"
                      for s in styles)
    return f"""
## Styles

A style library: {len(styles)} styles over shared convolutions. Choose one with `--style NAME`
(`ganstyle stylize`) or the GAN Stylize node's `style` input; blend them (`--style "a:0.7, b:0.3"`)
or give regions their own style with masks (`--mask region.png=NAME`), all in one pass.
`ganstyle sheet photo.jpg --model this-model` shows every style on one photo.

| style | source | author | licence |
|---|---|---|---|
{rows}
"""


def _use(generator: torch.nn.Module, ref: str) -> str:
    if getattr(generator.config, "style_embedding", 0):
        return "\nGive it a style image: see *Any style* below.\n"
    return f"""
```bash
ganstyle stylize photo.jpg -o out/ --model {ref}
```

```python
from ganstyle.core.images import load_image, save_image
from ganstyle.core.models import load_style_model

model = load_style_model("{ref}").generator
save_image(model(load_image("photo.jpg")), "stylised.png")
```
"""


def _arbitrary_section(generator: torch.nn.Module, ref: str) -> str:
    """For an arbitrary-style model: how to give it a style, and the encoder it reads."""
    config = generator.config
    if not getattr(config, "style_embedding", 0):
        return ""
    from .hub import encoder_for_identity

    name = encoder_for_identity(config.style_encoder)
    encoder = f"`{name}` (`{config.style_encoder}`)" if name else f"`{config.style_encoder}`"
    return f"""
## Any style

An arbitrary-style model: it has no styles of its own. Give it any style image: a predictor turns
the image's VGG statistics (channel mean and standard deviation at relu1_1 … relu5_1) into the
generator's normalisation parameters (Ghiasi et al. 2017), and the photo is stylised in one pass.
It reads the statistics of the encoder {encoder}; features from another encoder are refused.

```bash
ganstyle stylize photo.jpg -o out.png --model {ref} --style-image painting.jpg
```

```python
from ganstyle.core.features import compute_style_features
from ganstyle.core.images import load_image, save_image
from ganstyle.core.models import load_style_model
from ganstyle.core.stylize import stylize
from ganstyle.core.vgg import load_vgg_encoder

style = compute_style_features(load_vgg_encoder("{name or config.style_encoder}"), load_image("painting.jpg"))
save_image(stylize(load_style_model("{ref}"), load_image("photo.jpg"), style=style), "stylised.png")
```

In ComfyUI: **Load VGG Encoder** (`{name or "the encoder above"}`) → **Style Features** (the
painting) → GAN Stylize's `style_features` input. Blend Style Features mixes several paintings;
`mask_features` gives a masked region its own painting; `palette` (`--palette 0.5` in the CLI)
moves the result's colours to the painting's own palette.
"""


def _start(options: Mapping[str, Any]) -> str:
    return f", fine-tuned from `{options['init_from']}`" if options.get("init_from") else ""


def _training_section(t: TrainingFacts) -> str:
    losses = "\n".join(f"| {k} | {v:.4g} |" for k, v in t.final_losses.items()) or "| (none logged) | |"
    options = "\n".join(f"| `{k}` | `{v if isinstance(v, str) else json.dumps(v)}` |" for k, v in t.options.items())
    return f"""
## Training data

- content: {t.data["content"]}
- style: {t.data["style"]}

Check the licences of the style and content images before sharing this model.

## Training

- steps: {t.steps}, global batch {t.global_batch} ({t.world_size} process(es)), {t.image_size}px crops
- device: {t.device}, precision {t.precision}, training time {t.minutes:.1f} min
- loss encoder: {t.encoder}

### Final losses (average of the last logging interval)

| loss | value |
|---|---|
{losses}

### Options

| option | value |
|---|---|
{options}
"""
