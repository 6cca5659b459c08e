"""Safe file I/O: safetensors only (never pickle), and atomic writes (write, fsync, rename),
so a failed or interrupted write leaves the previous file intact."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import struct
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as _st_save_bytes

from .errors import WeightsError

PICKLE_SUFFIXES = {".pth", ".pt", ".ckpt", ".bin", ".pkl", ".pickle"}
# safetensors headers are JSON objects; anything larger than this is not a real header.
_MAX_HEADER_BYTES = 100 * 1024 * 1024


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename.

    The file gets the mode an ordinary ``open(path, "w")`` would give a new file (``0o666`` less
    the process umask: 0644 under the usual umask 022), not the private 0600 of
    :func:`tempfile.mkstemp`. If anything fails (disk full, process killed) the old file at
    ``path`` is untouched and the temporary file is removed (or left as ``.tmp-*`` garbage that
    is never read)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, exclusive temporary file beside ``path``, created with mode 0o666 so that the kernel
    applies the umask (reading the umask would mean changing it, which races with other threads)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.tmp-{secrets.token_hex(6)}"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file beside {path}")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def save_safetensors_atomic(tensors: dict[str, torch.Tensor], path: str | os.PathLike,
                            metadata: dict[str, str] | None = None) -> None:
    """Save tensors as safetensors atomically (contiguous CPU copies are made as needed)."""
    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write_bytes(path, _st_save_bytes(clean, metadata=metadata))


def check_safetensors_file(path: str | os.PathLike) -> dict:
    """Validate that ``path`` is a readable safetensors file and return its header
    (``{key: {"dtype", "shape", "data_offsets"}}``, ``__metadata__`` removed).

    Raises :class:`WeightsError` naming the file for: missing file, pickle checkpoints
    (refused, never unpickled), truncated or corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise WeightsError(
            f"{path}: '{path.suffix}' files are PyTorch pickles, which ganstyle never loads "
            f"(unpickling can run arbitrary code). Convert it to .safetensors first, e.g. "
            f"safetensors.torch.save_file(state_dict, 'model.safetensors') in a trusted session.")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)
        if len(head) < 8:
            raise WeightsError(f"{path}: file is {size} bytes, too short to be safetensors (truncated?)")
        # safetensors: an 8-byte little-endian header length, then the JSON header's "{". The
        # length's first bytes can be those of a pickle (0x80) or zip ("PK") file: only without the
        # "{" is the file taken for one.
        if head[8:] != b"{" and (head[:1] == b"\x80" or head[:2] == b"PK"):
            raise WeightsError(
                f"{path}: this is a pickle/zip PyTorch checkpoint renamed to '{path.suffix}', not "
                f"safetensors. ganstyle never unpickles; convert it to safetensors first.")
        (header_len,) = struct.unpack("<Q", head[:8])
        f.seek(8)
        if header_len > _MAX_HEADER_BYTES or 8 + header_len > size:
            raise WeightsError(f"{path}: not a valid safetensors file (header length {header_len} "
                               f"does not fit in a {size}-byte file; corrupt or truncated)")
        try:
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise WeightsError(f"{path}: not a valid safetensors file (header is not JSON: {e})") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{path}: not a valid safetensors file (header is not a JSON object)")
    header.pop("__metadata__", None)
    end = 0
    for key, info in header.items():
        try:
            start, stop = info["data_offsets"]
            end = max(end, int(stop))
        except (KeyError, TypeError, ValueError):
            raise WeightsError(f"{path}: corrupt safetensors header entry for key '{key}'") from None
    if 8 + header_len + end > size:
        raise WeightsError(f"{path}: truncated safetensors file: tensors need {8 + header_len + end} "
                           f"bytes, the file has {size}. Download or copy it again.")
    return header


def load_safetensors_checked(path: str | os.PathLike, keys: Iterable[str] | None = None,
                             expected_shapes: dict[str, tuple] | None = None) -> dict[str, torch.Tensor]:
    """Read ``keys`` (default: all) from a safetensors file, checking presence and shapes.

    Only the requested tensors are read from disk (``safe_open`` is lazy)."""
    header = check_safetensors_file(path)
    wanted = list(header) if keys is None else list(keys)
    missing = [k for k in wanted if k not in header]
    if missing:
        raise WeightsError(f"{path}: missing keys {missing[:8]}{' …' if len(missing) > 8 else ''} "
                           f"({len(missing)} of {len(wanted)} expected keys absent)")
    out: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for k in wanted:
                out[k] = f.get_tensor(k)
    except WeightsError:
        raise
    except Exception as e:  # safetensors raises its own error types for corrupt data
        raise WeightsError(f"{path}: cannot read tensors: {e}") from None
    for k, t in out.items():
        want = (expected_shapes or {}).get(k)
        if want is not None and tuple(t.shape) != tuple(want):
            raise WeightsError(f"{path}: key '{k}' has shape {tuple(t.shape)}, expected {tuple(want)}")
        if not t.is_floating_point():
            raise WeightsError(f"{path}: key '{k}' has dtype {t.dtype}, expected a floating-point tensor")
        if not torch.isfinite(t).all():
            raise WeightsError(f"{path}: key '{k}' contains NaN or Inf values (corrupt weights)")
    return out


def load_module_weights(module: torch.nn.Module, path: str | os.PathLike, described_by: str,
                        missing_defaults: dict[str, torch.Tensor] | None = None) -> None:
    """Load ``module``'s weights from the safetensors file ``path``, strictly: every tensor of its
    state dict present with its shape (floating point, finite), no extra key (the config
    ``described_by`` and the weights must match). ``missing_defaults``: keys that files written
    before they existed lack, and the value that reproduces those files' behaviour."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    present = check_safetensors_file(path)
    legacy = {k: v for k, v in (missing_defaults or {}).items() if k in expected and k not in present}
    state = load_safetensors_checked(path, [k for k in expected if k not in legacy], expected)
    state.update(legacy)
    extra = sorted(set(present) - set(expected))
    if extra:
        raise WeightsError(f"{path}: unexpected keys {extra[:8]} for the {type(module).__name__} described by "
                           f"{described_by} (config and weights do not match)")
    module.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def tensors_fingerprint(tensors: dict[str, torch.Tensor]) -> str:
    """A short, stable identity of a set of weights (sha256 over keys, shapes and fp32 bytes)."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().to("cpu", torch.float32).contiguous()
        h.update(k.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]
