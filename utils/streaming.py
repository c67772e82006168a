"""Image folders larger than memory (``--data-mode stream``): files decoded in DataLoader workers each epoch.

The other data paths decode a folder once into one uint8 tensor (``utils/data_sources.py``) and keep
it in RAM (``memory``) or on the GPU (``device``). A million 256×256 images do not fit; then the
split stays a list of files, and each DataLoader worker decodes and resizes the images of its batch
with the same function the decoded tensor was built with (:func:`utils.data_sources.decode_resized`),
so a streamed epoch sees the same pixels, in the same order, under the same transforms. Only the
normalization statistics need the whole set: they come from a seeded sample of images, cached.

``auto`` picks ``stream`` for a folder whose decoded tensor would take more than
``STREAM_ABOVE_RAM_SHARE`` of the memory available now, and says so.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import torch

from utils.data_sources import decode_resized

STREAM_ABOVE_RAM_SHARE = 0.5  # auto streams a folder whose decoded tensor would exceed this share of available RAM
STATS_SAMPLE = 2000  # images decoded to estimate the normalization statistics of a streamed folder


class LazyImages:
    """Indexable like a uint8 image tensor (N, 3, S, S), but each image is decoded when it is asked for."""

    def __init__(self, paths: Sequence[Path], image_size: int) -> None:
        self.paths, self.image_size = list(paths), image_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: Union[int, slice, torch.Tensor]) -> torch.Tensor:
        if isinstance(index, int):
            return decode_resized(self.paths[index], self.image_size)
        positions = range(len(self.paths))[index] if isinstance(index, slice) else index.flatten().tolist()
        if not positions:
            return torch.empty(0, 3, self.image_size, self.image_size, dtype=torch.uint8)
        return torch.stack([decode_resized(self.paths[i], self.image_size) for i in positions])


class ImageFiles:
    """A split as files: the :class:`utils.data_sources.ImageTensors` interface, decoded on demand."""

    def __init__(self, files: Sequence[tuple[Path, int]], image_size: int) -> None:
        self.files = list(files)
        self.images = LazyImages([path for path, _ in self.files], image_size)
        self.labels = torch.tensor([label for _, label in self.files], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.files)

    def select(self, indices: torch.Tensor) -> "ImageFiles":
        return ImageFiles([self.files[i] for i in indices.tolist()], self.images.image_size)


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


def sampled_channel_stats(split: ImageFiles, seed: int, cache_dir: Optional[Path]
                          ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (in [0, 1] units) of a seeded sample of the split's images, cached."""
    from utils.data_loader import channel_stats

    count = min(STATS_SAMPLE, len(split))
    chosen = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed % 2**63))[:count].sort().values
    key = hashlib.sha1(f"{split.images.image_size}|{count}|{seed}".encode())
    for index in chosen.tolist():
        path = split.files[index][0]
        key.update(f"{path}|{path.stat().st_size}|{path.stat().st_mtime_ns}".encode())
    cache_file = cache_dir / f"stream-stats-{key.hexdigest()[:16]}.json" if cache_dir is not None else None
    if cache_file is not None and cache_file.exists():
        try:
            cached = json.loads(cache_file.read_text())
            return tuple(cached["mean"]), tuple(cached["std"])
        except (ValueError, KeyError):
            pass  # a broken cache is recomputed
    mean, std = channel_stats(split.images[chosen])
    if cache_file is not None:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            cache_file.write_text(json.dumps({"mean": mean, "std": std}))
        except OSError:
            pass  # the statistics are recomputed next time
    return mean, std
