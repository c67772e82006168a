"""Data sources: every source becomes one :class:`ImageTensors` (uint8 images, int64 labels).

Three sources, one result: torchvision's CIFAR-10/100, an image folder, synthetic data. Everything
after this module (subsets, statistics, loaders) is the same for all of them.

An image folder is read as users really have them, by two functions that every path shares (the
in-memory loader today, a streaming loader later):

- :func:`list_image_folder` finds the classes and files. A class is a non-hidden folder under
  ``train/`` that holds at least one image; anything whose name starts with ``.`` is ignored
  everywhere (Jupyter's ``.ipynb_checkpoints``, macOS's ``.DS_Store`` and ``._*`` files, ``.cache``).
  A class folder without images, an unreadable folder or a broken link is a one-line
  :class:`UserError` naming the path, never a silent extra class.
- :func:`decode_image_file` turns any file Pillow or torchvision can open into 8-bit RGB (3, H, W):
  16-bit and 32-bit images are *scaled* to 8 bits, an animated image gives its first frame.

A decoded folder is cached as a uint8 tensor keyed by the file list, sizes and modification
times; a cache whose shape or labels do not match the folder is rebuilt, never trusted.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms import v2

from utils.config import TrainConfig
from utils.errors import UserError
from utils.files import atomic_write, files_fingerprint

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
SPLIT_NAMES = {"train": ("train",), "test": ("test", "val")}
DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cifar10-framework"
SYNTHETIC_CLASSES = 10
EXPECTED_LAYOUT = "train/<class>/*.jpg and test/<class>/*.jpg (or val/)"


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



# ------------------------------------------------------------------------------------ choosing the source
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
        if (root / folder).is_dir() and _split_dir(root, "train") is None:
            return name
    if root.is_dir() and not _split_dir(root, "train") and not _split_dir(root, "test") \
            and not _looks_like_a_split(root):
        return "cifar10"  # an empty or unrelated folder: CIFAR-10 is downloaded into it (unless --no-download)
    image_folder_layout(root)  # raises, saying what the folder is instead
    return "folder"


def _split_dir(root: Path, split: str) -> Optional[Path]:
    for name in SPLIT_NAMES[split]:
        if (root / name).is_dir():
            return root / name
    return None


def _looks_like_a_split(folder: Path) -> bool:
    """Does ``folder`` hold images directly, or class folders of images (i.e. is it a split itself)?"""
    try:
        for entry in folder.iterdir():
            if _is_hidden(entry):
                continue
            if _is_image(entry):
                return True
            if entry.is_dir() and any(_is_image(p) for p in entry.iterdir()):
                return True
    except OSError:
        return False
    return False


def image_folder_layout(root: Path) -> tuple[Path, Path]:
    """``(train_dir, test_dir)`` of the image folder ``root``, or a UserError saying what ``root`` is instead."""
    pass_instead = "pass the folder that holds train/ and test/"
    if root.is_symlink() and not root.exists():
        raise UserError(f"--data-dir {root} is a broken symbolic link; point it at an existing folder")
    if not root.exists():
        raise UserError(f"--data-dir {root} does not exist: {pass_instead} ({EXPECTED_LAYOUT})")
    if not root.is_dir():
        raise UserError(f"--data-dir {root} is a file, not a folder; {pass_instead} ({EXPECTED_LAYOUT})")
    train_dir, test_dir = _split_dir(root, "train"), _split_dir(root, "test")
    if train_dir is None and test_dir is not None:
        raise UserError(f"--data-dir {root} has {test_dir.name}/ but no train/ folder; add {root}/train/<class>/*.jpg "
                        f"(the images to learn from) beside it")
    if train_dir is None and (root.name in ("train", "test", "val") or _looks_like_a_split(root)):
        parent = root.resolve().parent
        raise UserError(f"--data-dir {root} looks like a single split (class folders of images), not a data set; "
                        f"{pass_instead}" + (f": --data-dir {parent}" if _split_dir(parent, "train") else
                                             f" ({EXPECTED_LAYOUT})"))
    if train_dir is None:
        raise UserError(f"--data-dir {root} holds no image folder: expected {root}/{EXPECTED_LAYOUT}")
    if test_dir is None:
        raise UserError(f"--data-dir {root} has train/ but no test/ or val/ folder: add {root}/test/<class>/*.jpg "
                        f"(images held out for evaluation)")
    return train_dir, test_dir


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


def resize_split(split: ImageTensors, image_size: int) -> ImageTensors:
    if split.images.shape[-1] == image_size and split.images.shape[-2] == image_size:
        return split
    resized = v2.functional.resize(split.images, [image_size, image_size], antialias=True)
    return ImageTensors(resized, split.labels, split.fingerprint)


# ------------------------------------------------------------------------------------ image folders
@dataclass
class FolderListing:
    """What an image folder holds: the class names (from ``train/``) and each split's (file, label) pairs."""

    classes: list[str]
    train: list[tuple[Path, int]]
    test: list[tuple[Path, int]]
    train_dir: Path
    test_dir: Path


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()


def _visible_entries(folder: Path) -> list[os.DirEntry]:
    """The non-hidden entries of ``folder``, sorted by name; unreadable folders and broken links are UserErrors.

    ``os.scandir`` reads each entry's type with the listing: a folder of 50,000 images is listed
    without a ``stat`` per file (``Path.iterdir`` + ``is_file`` made one or two each, seconds in all).
    """
    try:
        with os.scandir(folder) as scan:
            entries = sorted((e for e in scan if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as error:
        raise UserError(f"cannot read the folder {folder} ({error.strerror or error.__class__.__name__}); "
                        f"check its permissions") from None
    for entry in entries:
        if entry.is_symlink() and not os.path.exists(entry.path):
            raise UserError(f"{entry.path} is a broken symbolic link; remove it or point it at an existing file")
    return entries


def _is_image_entry(entry: os.DirEntry) -> bool:
    return os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS and entry.is_file()


def _images_in(folder: Path) -> list[Path]:
    return [Path(e.path) for e in _visible_entries(folder) if _is_image_entry(e)]


def list_image_folder(root: Path) -> FolderListing:
    """Classes and files of the image folder ``root`` (``train/<class>/*``, ``test/<class>/*`` or ``val/``)."""
    train_dir, test_dir = image_folder_layout(root)
    extensions = ", ".join(sorted(IMAGE_EXTENSIONS))
    train_entries = _visible_entries(train_dir)
    class_dirs = [Path(d.path) for d in train_entries if d.is_dir()]
    if not class_dirs:
        loose = " (it holds images directly: move them into one folder per class)" if any(
            _is_image_entry(e) for e in train_entries) else ""
        raise UserError(f"{train_dir} holds no images: expected {train_dir}/<class>/*.jpg{loose} "
                        f"(extensions: {extensions})")
    train = []
    for label, class_dir in enumerate(class_dirs):
        images = _images_in(class_dir)
        if not images:
            raise UserError(f"class folder {class_dir} holds no images (extensions: {extensions}); "
                            f"add images or remove the folder")
        train += [(path, label) for path in images]
    classes = [d.name for d in class_dirs]

    test_class_dirs = [Path(d.path) for d in _visible_entries(test_dir) if d.is_dir()]
    unknown = [d.name for d in test_class_dirs if d.name not in classes]
    if unknown:
        raise UserError(f"{test_dir} has class folders that train/ lacks: {', '.join(unknown)}")
    test = [(path, classes.index(d.name)) for d in test_class_dirs for path in _images_in(d)]
    if not test:
        raise UserError(f"{test_dir} holds no images: expected {test_dir}/<class>/*.jpg (extensions: {extensions})")
    return FolderListing(classes, train, test, train_dir, test_dir)


def image_folder_splits(root: Path, image_size: int, cache_dir: Optional[Path], progress: bool
                        ) -> tuple[ImageTensors, ImageTensors, list[str]]:
    """``root/train/<class>/*`` and ``root/test/<class>/*`` (or ``val/``), any size, resized to ``image_size``."""
    listing = list_image_folder(root)
    train = _load_folder_cached(listing.train_dir, listing.train, listing.classes, image_size, cache_dir, progress)
    test = _load_folder_cached(listing.test_dir, listing.test, listing.classes, image_size, cache_dir, progress)
    train.fingerprint, test.fingerprint = listing_fingerprint(listing.train), listing_fingerprint(listing.test)
    return train, test, listing.classes


def listing_fingerprint(files: Sequence[tuple[Path, int]]) -> str:
    """Which images a folder split holds: its files' class folders, names and labels (not their times: a copied
    data set is the same data set). An image added, removed or moved to another class changes it."""
    key = hashlib.sha1()
    for path, label in files:
        key.update(f"{path.parent.name}/{path.name}|{label}\n".encode())
    return f"{len(files)} files, {key.hexdigest()[:16]}"


def _load_folder_cached(split_dir: Path, files: Sequence[tuple[Path, int]], classes: Sequence[str], image_size: int,
                        cache_dir: Optional[Path], progress: bool) -> ImageTensors:
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    cache_file = None
    if cache_dir is not None:
        # changes when a file is added, removed, renamed or rewritten, or when the size or classes change
        key = files_fingerprint(f"{split_dir.resolve()}|{image_size}|{list(classes)}|{DECODING}", files)
        cache_file = cache_dir / f"{split_dir.parent.name}-{split_dir.name}-{image_size}px-{key}.pt"
        cached = _read_cache(cache_file, labels, image_size)
        if cached is not None:
            return cached
    tensors = decode_files(files, image_size, progress, desc=f"decoding {split_dir}")
    if cache_file is not None:
        _write_cache(cache_file, tensors)
    return tensors


def _read_cache(cache_file: Path, labels: torch.Tensor, image_size: int) -> Optional[ImageTensors]:
    """The cached split if it is exactly what the folder would give (shape, dtype, labels); else None."""
    if not cache_file.exists():
        return None
    try:
        cached = torch.load(cache_file, weights_only=True)
        images, cached_labels = cached["images"], cached["labels"]
    except Exception:  # a broken cache is rebuilt, never trusted
        return None
    expected_shape = (len(labels), 3, image_size, image_size)
    if (not isinstance(images, torch.Tensor) or tuple(images.shape) != expected_shape or images.dtype != torch.uint8
            or not isinstance(cached_labels, torch.Tensor) or not torch.equal(cached_labels, labels)):
        return None
    return ImageTensors(images, cached_labels)


def _write_cache(cache_file: Path, tensors: ImageTensors) -> None:
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cache_file, lambda temporary: torch.save({"images": tensors.images, "labels": tensors.labels},
                                                              temporary))
    except (OSError, UserError):  # an unwritable cache (or a full disk) only costs time
        pass


def decode_files(files: Sequence[tuple[Path, int]], image_size: int, progress: bool, desc: str = "decoding"
                 ) -> ImageTensors:
    """Decode every file to RGB and resize it to ``image_size``; a file that cannot be decoded is a UserError."""
    from tqdm import tqdm

    images = torch.empty(len(files), 3, image_size, image_size, dtype=torch.uint8)
    for index, (path, _) in enumerate(tqdm(files, desc=desc, disable=not progress, leave=False)):
        images[index] = decode_resized(path, image_size)
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    return ImageTensors(images, labels)


# ------------------------------------------------------------------------------------ decoding one file
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
