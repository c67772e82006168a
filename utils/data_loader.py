"""Data: every source becomes one uint8 tensor of images, then loaders over it.

``build_data(config)`` is the one entry point. Each source (torchvision CIFAR-10/100, an image
folder, synthetic) is first decoded into :class:`ImageTensors` — uint8 images (N, 3, H, W) and int64
labels (N,) — so that everything after it is the same for every source:

- normalization statistics are measured on the training images (per channel, mean and std);
- ``--subset`` takes a stratified, seeded sample of the training images;
- the DataLoader path applies per-image ``transforms.v2`` in worker processes;
- a later device-resident fast path can move the same uint8 tensors to the GPU once and augment
  whole batches there (airbench-style) without touching the sources.

An image folder is decoded once and cached as a uint8 tensor (``--cache-dir``), so later runs skip
JPEG decoding altogether. The data order of each epoch, and the seeds of the worker processes that
augment it, are pure functions of (seed, epoch): that is what makes a run resumed from an epoch's
end continue exactly as an uninterrupted one. (Resumed mid-epoch, after Ctrl-C, the order is the
same, but with workers > 0 the augmentation draws of the remaining batches differ.)
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms import v2

from utils.augmentation import build_test_transform, build_train_transform
from utils.config import TrainConfig
from utils.errors import UserError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cifar10-framework"


@dataclass
class ImageTensors:
    """A decoded split: ``images`` uint8 (N, 3, H, W), ``labels`` int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, indices: torch.Tensor) -> "ImageTensors":
        return ImageTensors(self.images[indices], self.labels[indices])


@dataclass
class DataBundle:
    """What a trainer needs: loaders, class names and the normalization used."""

    train_loader: DataLoader
    test_loader: DataLoader
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dataset: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Fix the data order and augmentation seeds of ``epoch``; skip ``start_batch`` batches (resume)."""
        self.train_loader.batch_sampler.set_epoch(epoch, start_batch)
        # Worker processes seed their RNG (and so the augmentation) from the loader's generator.
        self.train_loader.generator.manual_seed(self.train_loader.batch_sampler.epoch_seed(epoch) + 1)


# ------------------------------------------------------------------------------------ choosing the source
def resolve_dataset(config: TrainConfig) -> str:
    """The data set to read: the explicit ``--dataset``, or what ``--data-dir`` holds."""
    if config.dataset is not None:
        return config.dataset
    root = Path(config.data_dir)
    if _split_dir(root, "train") is not None:
        return "folder"
    for name, folder in CIFAR_FOLDERS.items():
        if (root / folder).is_dir():
            return name
    if not root.exists() and config.data_dir != TrainConfig.data_dir:
        raise UserError(f"--data-dir {root} does not exist: point it at a folder with train/ and test/ class "
                        f"folders, or at CIFAR's cifar-10-batches-py")
    return "cifar10"  # the default ./data: torchvision downloads it there unless --no-download


def _split_dir(root: Path, split: str) -> Optional[Path]:
    names = ("train",) if split == "train" else ("test", "val")
    for name in names:
        if (root / name).is_dir():
            return root / name
    return None


def load_splits(config: TrainConfig) -> tuple[ImageTensors, ImageTensors, list[str], str]:
    """Decode the train and test splits of the configured source."""
    dataset = resolve_dataset(config)
    if dataset == "synthetic":
        train, test, classes = synthetic_splits(config.synthetic_size, config.image_size, config.num_classes or 10,
                                                config.seed)
    elif dataset == "folder":
        train, test, classes = image_folder_splits(Path(config.data_dir), config.image_size,
                                                   _cache_dir(config), config.progress)
    else:
        train, test, classes = cifar_splits(dataset, Path(config.data_dir), config.download)
        train, test = resize_split(train, config.image_size), resize_split(test, config.image_size)
    return train, test, classes, dataset


def _cache_dir(config: TrainConfig) -> Optional[Path]:
    if config.cache_dir == "":
        return None
    return Path(config.cache_dir) if config.cache_dir else DEFAULT_CACHE_DIR


# ------------------------------------------------------------------------------------ sources
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
    generator = torch.Generator().manual_seed(seed)
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


def image_folder_splits(root: Path, image_size: int, cache_dir: Optional[Path], progress: bool
                        ) -> tuple[ImageTensors, ImageTensors, list[str]]:
    """``root/train/<class>/*`` and ``root/test/<class>/*`` (or ``val/``), any size, resized to ``image_size``."""
    train_dir, test_dir = _split_dir(root, "train"), _split_dir(root, "test")
    if train_dir is None or test_dir is None:
        raise UserError(f"{root} holds no image folder: expected {root}/train/<class>/*.jpg and "
                        f"{root}/test/<class>/*.jpg (or val/)")
    classes = sorted(d.name for d in train_dir.iterdir() if d.is_dir())
    train = _load_folder_cached(train_dir, classes, image_size, cache_dir, progress)
    test = _load_folder_cached(test_dir, classes, image_size, cache_dir, progress)
    return train, test, classes


def _list_images(split_dir: Path, classes: Sequence[str]) -> list[tuple[Path, int]]:
    unknown = sorted(d.name for d in split_dir.iterdir() if d.is_dir() and d.name not in classes)
    if unknown:
        raise UserError(f"{split_dir} has class folders that train/ lacks: {', '.join(unknown)}")
    files = [(path, label) for label, name in enumerate(classes) if (split_dir / name).is_dir()
             for path in sorted((split_dir / name).iterdir()) if path.suffix.lower() in IMAGE_EXTENSIONS]
    if not files:
        raise UserError(f"{split_dir} holds no images: expected {split_dir}/<class>/*.jpg "
                        f"(extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def _load_folder_cached(split_dir: Path, classes: Sequence[str], image_size: int, cache_dir: Optional[Path],
                        progress: bool) -> ImageTensors:
    files = _list_images(split_dir, classes)
    cache_file = None
    if cache_dir is not None:
        # The key changes when a file is added, removed, renamed or rewritten, or the size changes.
        key = hashlib.sha1(f"{split_dir.resolve()}|{image_size}|{classes}".encode())
        for path, label in files:
            stat = path.stat()
            key.update(f"{path.name}|{label}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        cache_file = cache_dir / f"{split_dir.parent.name}-{split_dir.name}-{image_size}px-{key.hexdigest()[:16]}.pt"
        if cache_file.exists():
            try:
                cached = torch.load(cache_file, weights_only=True)
                return ImageTensors(cached["images"], cached["labels"])
            except Exception:  # a broken cache is rebuilt, never trusted
                pass
    tensors = decode_files(files, image_size, progress, desc=f"decoding {split_dir}")
    if cache_file is not None:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            temporary = cache_file.with_suffix(".tmp")
            torch.save({"images": tensors.images, "labels": tensors.labels}, temporary)
            os.replace(temporary, cache_file)
        except OSError:
            pass  # an unwritable cache only costs time
    return tensors


def decode_files(files: Sequence[tuple[Path, int]], image_size: int, progress: bool, desc: str = "decoding"
                 ) -> ImageTensors:
    """Decode, convert to RGB (greyscale and RGBA too) and resize every file; a corrupt file is a UserError."""
    from tqdm import tqdm

    images = torch.empty(len(files), 3, image_size, image_size, dtype=torch.uint8)
    for index, (path, _) in enumerate(tqdm(files, desc=desc, disable=not progress, leave=False)):
        image = _decode_one(path)
        if image.shape[-2:] != (image_size, image_size):
            image = v2.functional.resize(image, [image_size, image_size], antialias=True)
        images[index] = image
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    return ImageTensors(images, labels)


def _decode_one(path: Path) -> torch.Tensor:
    try:
        return decode_image(str(path), mode=ImageReadMode.RGB)
    except (RuntimeError, ValueError):
        pass
    try:  # formats torchvision does not decode (BMP, TIFF...) go through Pillow
        import numpy as np
        from PIL import Image

        with Image.open(path) as image:
            return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)
    except Exception as error:
        raise UserError(f"cannot decode image {path} ({error.__class__.__name__}); remove or replace the file") from None


def resize_split(split: ImageTensors, image_size: int) -> ImageTensors:
    if split.images.shape[-1] == image_size and split.images.shape[-2] == image_size:
        return split
    resized = v2.functional.resize(split.images, [image_size, image_size], antialias=True)
    return ImageTensors(resized, split.labels)


# ------------------------------------------------------------------------------------ subsets and stats
def stratified_subset(labels: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """Indices of ``size`` samples with the class proportions of ``labels``, chosen with ``seed``."""
    if size > len(labels):
        raise UserError(f"--subset {size} is larger than the training set ({len(labels)} images); "
                        f"use at most {len(labels)}")
    generator = torch.Generator().manual_seed(seed)
    classes, counts = labels.unique(return_counts=True)
    quotas = counts.double() * size / len(labels)
    taken = quotas.floor().long()
    # Largest remainders get the images the floor left over, so the quotas sum to ``size``.
    for i in torch.argsort(quotas - taken, descending=True)[: size - int(taken.sum())]:
        taken[i] += 1
    chosen = []
    for cls, k in zip(classes, taken):
        members = (labels == cls).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:k]])
    return torch.cat(chosen).sort().values


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, 3, H, W), in [0, 1] units."""
    sample = images[:: max(1, len(images) // 10000)].double() / 255  # 10,000 images estimate it to 1e-3
    mean = sample.mean(dim=(0, 2, 3))
    std = sample.std(dim=(0, 2, 3))
    return tuple(round(v, 4) for v in mean.tolist()), tuple(round(max(v, 1e-3), 4) for v in std.tolist())


# ------------------------------------------------------------------------------------ loaders
class TensorImageDataset(Dataset):
    """Per-image transform over a uint8 tensor: returns (float image (3, H, W), label)."""

    def __init__(self, split: ImageTensors, transform) -> None:
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        return self.transform(self.split.images[index]), self.split.labels[index]


class EpochBatchSampler(Sampler[list[int]]):
    """Shuffled batches whose order is a pure function of (seed, epoch), like DistributedSampler.

    ``set_epoch(epoch, start_batch)`` picks the order and where to start in it, so a run resumed in
    the middle of an epoch sees the batches an uninterrupted run would. The last, incomplete batch
    is dropped (BatchNorm cannot train on a batch of one).
    """

    def __init__(self, size: int, batch_size: int, seed: int) -> None:
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.drop_last = size > batch_size
        self.epoch, self.start_batch = 0, 0

    def epoch_seed(self, epoch: int) -> int:
        return self.seed * 1_000_003 + epoch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def batches_per_epoch(self) -> int:
        return self.size // self.batch_size if self.drop_last else -(-self.size // self.batch_size)

    def __len__(self) -> int:
        return self.batches_per_epoch() - self.start_batch

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.epoch_seed(self.epoch)))
        for b in range(self.start_batch, self.batches_per_epoch()):
            yield order[b * self.batch_size:(b + 1) * self.batch_size].tolist()


def build_data(config: TrainConfig, device: torch.device = torch.device("cpu")) -> DataBundle:
    """Train and test loaders for ``config`` (resolved), with the class names and normalization."""
    train, test, classes, dataset = load_splits(config)
    mean, std = channel_stats(train.images)
    if config.subset is not None:
        train = train.select(stratified_subset(train.labels, config.subset, config.seed))
    if config.test_subset is not None and config.test_subset < len(test):
        test = test.select(stratified_subset(test.labels, config.test_subset, config.seed))
    loader_options = dict(num_workers=config.workers, pin_memory=device.type == "cuda",
                          persistent_workers=False)
    train_loader = DataLoader(TensorImageDataset(train, build_train_transform(config, mean, std)),
                              batch_sampler=EpochBatchSampler(len(train), config.batch_size, config.seed),
                              generator=torch.Generator(), **loader_options)
    test_loader = DataLoader(TensorImageDataset(test, build_test_transform(config, mean, std)),
                             batch_size=max(config.batch_size, 256), shuffle=False, **loader_options)
    return DataBundle(train_loader, test_loader, classes, mean, std, dataset)
