"""Image conversions between ComfyUI's IMAGE (B, H, W, C) and torch's (B, C, H, W), PIL and files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def comfy_to_bchw(image: torch.Tensor) -> torch.Tensor:
    """ComfyUI IMAGE (B, H, W, C) float in [0, 1] → (B, 3, H, W) float32.

    Grayscale (C=1) is repeated to RGB; RGBA's alpha is dropped (stylise the colour, keep
    alpha separately). NaN/Inf or an empty batch is an :class:`InputError`."""
    if not isinstance(image, torch.Tensor):
        raise InputError(f"expected an IMAGE tensor, got {type(image).__name__}")
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4:
        raise InputError(f"IMAGE must be shaped (B, H, W, C), got {tuple(image.shape)}")
    b, h, w, c = image.shape
    if b == 0 or h == 0 or w == 0:
        raise InputError(f"IMAGE batch is empty (shape {tuple(image.shape)})")
    if c not in (1, 3, 4):
        raise InputError(f"IMAGE must have 1, 3 or 4 channels in the last dimension, got shape {tuple(image.shape)}")
    x = image.float()
    if not torch.isfinite(x).all():
        raise InputError("IMAGE contains NaN or Inf values")
    x = x[..., :3] if c == 4 else x.expand(-1, -1, -1, 3) if c == 1 else x
    return x.permute(0, 3, 1, 2).contiguous().clamp(0, 1)


def bchw_to_comfy(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) → ComfyUI IMAGE (B, H, W, 3) float32 in [0, 1] on the CPU."""
    return images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).contiguous().cpu()


def load_image(path: str | Path) -> torch.Tensor:
    """Read an image file → (1, 3, H, W) float32 in [0, 1]. 16-bit and palette images are
    converted; alpha is dropped."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float32) / (65535.0 if im.mode.startswith("I;16") or
                                                          np.asarray(im).max() > 255 else 255.0)
                arr = np.repeat(arr[..., None], 3, axis=2)
            else:
                arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise InputError(f"image not found: {path}") from None
    except Exception as e:
        raise InputError(f"{path}: cannot read image ({type(e).__name__}: {e})") from None
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0).clamp(0, 1).contiguous()


def to_pil(image: torch.Tensor) -> Image.Image:
    """(3, H, W) or (1, 3, H, W) in [0, 1] → PIL RGB image."""
    if image.dim() == 4:
        image = image[0]
    arr = (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


# file suffix → Pillow format; every suffix the loaders accept can also be written
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                 ".tif": "TIFF", ".tiff": "TIFF"}
# zlib level 3: 2.7x faster to write than Pillow's default 6 for ~10 % more bytes on a stylised
# 1024² photo (0.09 against 0.24 s, 1.07 against 0.97 MiB; ComfyUI's own SaveImage uses 4)
PNG_COMPRESS_LEVEL = 3


def image_format(path: str | Path) -> str:
    """The Pillow format for ``path``'s suffix; an unknown suffix is an :class:`InputError`."""
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise InputError(f"{path}: cannot write images with suffix '{suffix}'; use one of "
                         f"{', '.join(sorted(IMAGE_FORMATS))}")
    return IMAGE_FORMATS[suffix]


def encode_image(image: torch.Tensor, fmt: str, png_level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """(3, H, W)/(1, 3, H, W) in [0, 1] → the bytes of an 8-bit RGB file in Pillow format ``fmt``."""
    import io as _io

    buf = _io.BytesIO()
    options = {"PNG": {"compress_level": png_level}, "JPEG": {"quality": 95}, "WEBP": {"quality": 95},
               "TIFF": {"compression": "tiff_deflate"}}.get(fmt, {})
    to_pil(image).save(buf, format=fmt, **options)
    return buf.getvalue()


def save_image(image: torch.Tensor, path: str | Path, png_level: int = PNG_COMPRESS_LEVEL) -> Path:
    """Save (3, H, W)/(1, 3, H, W) in [0, 1] in the format its suffix names (see
    :data:`IMAGE_FORMATS`), atomically: a failed write leaves an existing file intact."""
    from .io import atomic_write_bytes

    path = Path(path)
    atomic_write_bytes(path, encode_image(image, image_format(path), png_level))
    return path


def image_grid(rows: list[list[torch.Tensor]], height: int = 256, pad: int = 4,
               labels: list[list[str]] | None = None) -> torch.Tensor:
    """Lay out images (each (3, H, W) or (1, 3, H, W)) in rows, each scaled to ``height``, with
    ``labels[row][cell]`` written above each cell when given. Returns (3, H_total, W_total) on white."""
    import torch.nn.functional as F

    scaled_rows = []
    for row in rows:
        cells = []
        for img in row:
            img = img[0] if img.dim() == 4 else img
            h, w = img.shape[-2:]
            new_w = max(1, round(w * height / h))
            cells.append(F.interpolate(img[None].float().cpu(), size=(height, new_w), mode="bilinear",
                                       align_corners=False, antialias=True)[0].clamp(0, 1))
        scaled_rows.append(cells)
    label_h = 16 if labels else 0
    width = max(sum(c.shape[-1] for c in r) + pad * (len(r) + 1) for r in scaled_rows)
    canvas = torch.ones(3, len(rows) * (height + pad + label_h) + pad, width)
    spots = []
    y = pad
    for i, r in enumerate(scaled_rows):
        x = pad
        for j, c in enumerate(r):
            canvas[:, y + label_h:y + label_h + height, x:x + c.shape[-1]] = c
            if labels and i < len(labels) and j < len(labels[i]):
                spots.append(((x, y + 2), labels[i][j]))
            x += c.shape[-1] + pad
        y += height + pad + label_h
    if not spots:
        return canvas
    from PIL import ImageDraw

    pil = to_pil(canvas)
    draw = ImageDraw.Draw(pil)
    for xy, text in spots:
        draw.text(xy, text, fill=(0, 0, 0))
    return torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()
