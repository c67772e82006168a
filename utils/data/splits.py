"""A split of images, as the data paths take it: decoded (:class:`ImageTensors`) or as files (:class:`ImageFiles`).

Every source (CIFAR, an image folder, synthetic data) gives one of these; subsets, statistics and the
loaders are the same for all of them.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import torch
from torchvision.transforms import v2

from utils.data.decode import decode_resized


@dataclass
class ImageTensors:
    """A decoded split: ``images`` uint8 (N, 3, H, W), ``labels`` int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor
    fingerprint: str = ""  # which images the whole split holds (kept by subsets): a resumed run checks it

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, indices: torch.Tensor) -> "ImageTensors":
        return ImageTensors(self.images[indices], self.labels[indices], self.fingerprint)


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
    """A split as files (``--data-mode stream``): the :class:`ImageTensors` interface, decoded on demand."""

    def __init__(self, files: Sequence[tuple[Path, int]], image_size: int, fingerprint: str = "") -> None:
        self.files = list(files)
        self.fingerprint = fingerprint or listing_fingerprint(self.files)
        self.images = LazyImages([path for path, _ in self.files], image_size)
        self.labels = torch.tensor([label for _, label in self.files], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.files)

    def select(self, indices: torch.Tensor) -> "ImageFiles":
        return ImageFiles([self.files[i] for i in indices.tolist()], self.images.image_size, self.fingerprint)


def listing_fingerprint(files: Sequence[tuple[Path, int]]) -> str:
    """Which images a folder split holds: its files' class folders, names and labels (not their times: a copied
    data set is the same data set). An image added, removed or moved to another class changes it."""
    key = hashlib.sha1()
    for path, label in files:
        key.update(f"{path.parent.name}/{path.name}|{label}\n".encode())
    return f"{len(files)} files, {key.hexdigest()[:16]}"


def resize_split(split: ImageTensors, image_size: int) -> ImageTensors:
    if split.images.shape[-1] == image_size and split.images.shape[-2] == image_size:
        return split
    resized = v2.functional.resize(split.images, [image_size, image_size], antialias=True)
    return ImageTensors(resized, split.labels, split.fingerprint)
