"""Does a decoded image folder fit in memory? If not, it is streamed (``--data-mode stream``).

The other data paths decode a folder once into one uint8 tensor (``utils/data/image_folder.py``) and keep
it in RAM (``memory``) or on the GPU (``device``). A million 256×256 images do not fit; then the
split stays a list of files (:class:`utils.data.splits.ImageFiles`), and each DataLoader worker
(``utils/data/torch_loader.py``) decodes and resizes the images of its batch with the same function the
decoded tensor was built with (:func:`utils.data.decode.decode_resized`), so a streamed epoch sees the
same pixels, in the same order, under the same transforms. Only the normalization statistics need the
whole set: they come from a seeded sample of images, cached (:func:`utils.data.order.sampled_channel_stats`).

This module holds the one question asked before: does a folder fit? ``build_data``
(``utils/data_loader.py``) streams a folder, when nobody chose the data mode, if its decoded tensor
would take more than ``STREAM_ABOVE_RAM_SHARE`` of the memory available now, and says so.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

STREAM_ABOVE_RAM_SHARE = 0.5  # auto streams a folder whose decoded tensor would exceed this share of available RAM


def decoded_bytes(images: int, image_size: int) -> int:
    return images * 3 * image_size * image_size


def available_memory_bytes() -> Optional[int]:
    """Memory available to new allocations now (Linux: MemAvailable), or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def should_stream(images: int, image_size: int) -> bool:
    available = available_memory_bytes()
    return available is not None and decoded_bytes(images, image_size) > STREAM_ABOVE_RAM_SHARE * available


