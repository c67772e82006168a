"""Data sources: every source becomes one split of images (``utils/data/splits.py``) per train and test.

Three sources, one result: torchvision's CIFAR-10/100, an image folder (``utils/data/image_folder.py``),
synthetic data. Everything after this module (subsets, statistics, loaders) is the same for all of them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch

from utils.config import TrainConfig
from utils.data.image_folder import (image_folder_layout, image_folder_splits, list_image_folder, looks_like_a_split,
                                     split_dir)
from utils.data.splits import ImageFiles, ImageTensors, resize_split
from utils.errors import UserError

CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cifar10-framework"
SYNTHETIC_CLASSES = 10


def resolve_dataset(config: TrainConfig) -> str:
    """The data set to read: the explicit ``--dataset``, or what ``--data-dir`` holds.

    Anything that looks like an image folder but is not a usable one (a file, the ``train/`` split
    itself, a folder with only ``test/``) is an error that says what to pass instead: it is never
    taken for an empty folder into which CIFAR-10 should be downloaded.
    """
    if config.dataset is not None:
        return config.dataset
    root = Path(config.data_dir)
    if not root.exists() and not root.is_symlink():
        if config.data_dir != TrainConfig.data_dir:
            raise UserError(f"--data-dir {root} does not exist: point it at a folder with train/ and test/ class "
                            f"folders, or at CIFAR's cifar-10-batches-py")
        return "cifar10"  # the default ./data: torchvision downloads it there unless --no-download
    for name, folder in CIFAR_FOLDERS.items():
        if (root / folder).is_dir() and split_dir(root, "train") is None:
            return name
    if root.is_dir() and not split_dir(root, "train") and not split_dir(root, "test") \
            and not looks_like_a_split(root):
        return "cifar10"  # an empty or unrelated folder: CIFAR-10 is downloaded into it (unless --no-download)
    image_folder_layout(root)  # raises, saying what the folder is instead
    return "folder"


def load_splits(config: TrainConfig, dataset: Optional[str] = None, as_files: bool = False
                ) -> tuple[ImageTensors | ImageFiles, ImageTensors | ImageFiles, list[str]]:
    """The train and test splits of ``dataset`` (default: :func:`resolve_dataset`'s), and the class names.

    Decoded into uint8 tensors, or, with ``as_files`` (an image folder streamed), listed as files.
    """
    dataset = dataset or resolve_dataset(config)
    if as_files and dataset != "folder":
        raise UserError(f"--data-mode stream reads image folders file by file; {dataset} is held in memory "
                        f"anyway: use --data-mode memory or device")
    if dataset == "synthetic":
        train, test, classes = synthetic_splits(config.synthetic_size, config.image_size, SYNTHETIC_CLASSES,
                                                config.seed)
        train.fingerprint = f"synthetic, {len(train)} images, seed {config.seed}"
        return train, test, classes
    if dataset == "folder" and as_files:
        listing = list_image_folder(Path(config.data_dir))
        return (ImageFiles(listing.train, config.image_size), ImageFiles(listing.test, config.image_size),
                listing.classes)
    if dataset == "folder":
        return image_folder_splits(Path(config.data_dir), config.image_size, cache_dir_of(config), config.progress)
    train, test, classes = cifar_splits(dataset, Path(config.data_dir), config.download)
    train.fingerprint = f"{dataset}, {len(train)} images"
    return resize_split(train, config.image_size), resize_split(test, config.image_size), classes


def cache_dir_of(config: TrainConfig) -> Optional[Path]:
    if config.cache_dir == "":
        return None
    return Path(config.cache_dir) if config.cache_dir else DEFAULT_CACHE_DIR


# ------------------------------------------------------------------------------------ CIFAR and synthetic
def cifar_splits(dataset: str, root: Path, download: bool) -> tuple[ImageTensors, ImageTensors, list[str]]:
    """torchvision's CIFAR-10/100, downloaded into ``root`` when missing unless ``download`` is False."""
    from torchvision import datasets

    cls = datasets.CIFAR10 if dataset == "cifar10" else datasets.CIFAR100
    where = (f"put {CIFAR_FOLDERS[dataset]} in {root}, or pass --data-dir PATH to a folder with train/ and "
             f"test/ class folders")
    try:
        splits = [cls(str(root), train=train, download=download) for train in (True, False)]
    except RuntimeError:  # not found, or corrupt, with download off
        raise UserError(f"{dataset} not found (or corrupt) in {root}, and --no-download forbids fetching it; "
                        f"{where}") from None
    except OSError as error:  # the download failed: no network, refused, disk full...
        raise UserError(f"could not download {dataset} into {root} ({error.__class__.__name__}: {error}); "
                        f"{where}, or use --no-download") from None
    tensors = [ImageTensors(torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(),
                            torch.tensor(s.targets, dtype=torch.int64)) for s in splits]
    return tensors[0], tensors[1], list(splits[0].classes)


def synthetic_splits(train_size: int, image_size: int, num_classes: int, seed: int
                     ) -> tuple[ImageTensors, ImageTensors, list[str]]:
    """Seeded random images with a learnable signal: each class has its own colour pattern plus noise."""
    generator = torch.Generator().manual_seed(seed % 2**63)
    prototypes = torch.rand(num_classes, 3, 4, 4, generator=generator)
    prototypes = torch.nn.functional.interpolate(prototypes, size=image_size, mode="bilinear", align_corners=False)

    def make(n: int) -> ImageTensors:
        labels = torch.arange(n) % num_classes
        labels = labels[torch.randperm(n, generator=generator)]
        noise = torch.randn(n, 3, image_size, image_size, generator=generator) * 0.25
        images = ((prototypes[labels] + noise).clamp(0, 1) * 255).round().to(torch.uint8)
        return ImageTensors(images, labels)

    classes = [f"class_{i}" for i in range(num_classes)]
    return make(train_size), make(max(num_classes, train_size // 4)), classes
