"""Decoding one image file: any file Pillow or torchvision can open becomes 8-bit RGB (3, H, W).

16-bit and 32-bit images are *scaled* to 8 bits (never truncated), an animated image gives its first
frame, and a photo stored sideways with an EXIF orientation tag is turned upright. Every data path
(a decoded folder, a stream, ``predict``) reads pixels through :func:`decode_resized`, so they see the
same pixels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms import v2

from utils.errors import UserError

DECODING = "exif-upright"  # how files become pixels; part of the decode cache's key, so a change re-decodes


def decode_resized(path: Path, image_size: int) -> torch.Tensor:
    """One file as uint8 RGB (3, image_size, image_size): the pixels of both the decoded tensor and a stream."""
    image = decode_image_file(path)
    if image.shape[-2:] != (image_size, image_size):
        image = v2.functional.resize(image, [image_size, image_size], antialias=True)
    return image


def decode_image_file(path: Path) -> torch.Tensor:
    """Any image file → uint8 RGB (3, H, W); a file that cannot be decoded is a UserError naming it.

    torchvision decodes JPEG, PNG, GIF and WebP fast; everything else (TIFF, BMP, animated WebP...)
    goes through Pillow. Greyscale, palette, LA, RGBA and CMYK become RGB (alpha dropped); an
    animated image gives its first frame; 16- and 32-bit images are scaled by :func:`to_uint8`. A photo
    stored sideways with an EXIF orientation tag is turned upright, as an image viewer shows it.
    """
    try:
        image = decode_image(str(path), mode=ImageReadMode.RGB, apply_exif_orientation=True)
    except (RuntimeError, ValueError):
        image = _decode_with_pillow(path)
    except OSError as error:
        raise UserError(f"cannot read image {path} ({error.strerror or error.__class__.__name__})") from None
    if image.ndim == 4:  # an animated image (GIF): frames × 3 × H × W
        image = image[0]
    return to_uint8(image, path)


def _decode_with_pillow(path: Path) -> torch.Tensor:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as opened:
            opened.seek(0)  # the first frame of an animated image
            image = ImageOps.exif_transpose(opened)
            if image.mode.startswith(("I", "F")):  # 16/32-bit integer or float, one channel
                pixels = torch.from_numpy(np.array(image))
                return to_uint8(pixels, path).expand(3, -1, -1).contiguous()
            return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).contiguous()
    except UserError:
        raise
    except Exception as error:
        raise UserError(f"cannot decode image {path} ({error.__class__.__name__}); remove or replace the file") from None


def to_uint8(pixels: torch.Tensor, path: Path | str = "image") -> torch.Tensor:
    """Scale pixels of any depth to uint8, never truncate them.

    - uint8: unchanged; uint16 (16-bit PNG/TIFF): ``round(x * 255 / 65535)``;
    - other integers (Pillow's 32-bit ``I`` mode): values within 0-255 are kept, within 0-65535 are
      read as 16-bit, anything else is stretched from the image's own minimum and maximum;
    - floats (``F`` mode): values within [0, 1] are multiplied by 255, anything else is stretched
      from the image's own minimum and maximum. Non-finite values are an error.
    """
    if pixels.dtype == torch.uint8:
        return pixels
    if pixels.dtype.is_floating_point:
        values = pixels.double()
        if not torch.isfinite(values).all():
            raise UserError(f"image {path} holds non-finite pixel values (NaN or infinity); remove or replace it")
        low, high = values.min().item(), values.max().item()
        if low >= 0 and high <= 1:
            return (values * 255).round().to(torch.uint8)
        return _stretch(values, low, high)
    values = pixels.to(torch.int64)
    low, high = values.min().item(), values.max().item()
    if pixels.dtype == torch.uint16 or (low >= 0 and 255 < high <= 65535):
        return ((values * 255 + 32767) // 65535).to(torch.uint8)
    if low >= 0 and high <= 255:
        return values.to(torch.uint8)
    return _stretch(values.double(), low, high)


def _stretch(values: torch.Tensor, low: float, high: float) -> torch.Tensor:
    scale = 255 / (high - low) if high > low else 0.0
    return ((values - low) * scale).round().clamp(0, 255).to(torch.uint8)
