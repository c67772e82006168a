"""Image folders as users really have them: ``train/<class>/*`` and ``test/<class>/*`` (or ``val/``).

- :func:`image_folder_layout` finds the two splits, or says in one line what the folder is instead
  (a single split, a file, a broken link, a folder with only ``test/``).
- :func:`list_image_folder` finds the classes and files. A class is a non-hidden folder under
  ``train/`` that holds at least one image; anything whose name starts with ``.`` is ignored
  everywhere (Jupyter's ``.ipynb_checkpoints``, macOS's ``.DS_Store`` and ``._*`` files, ``.cache``).
  A class folder without images, an unreadable folder or a broken link is a one-line
  :class:`UserError` naming the path, never a silent extra class.
- :func:`image_folder_splits` decodes both splits (``utils/data/decode.py``). A decoded folder is
  cached as a uint8 tensor keyed by the file list, sizes and modification times; a cache whose shape
  or labels do not match the folder is rebuilt, never trusted.

Both the decoded path and the stream (``--data-mode stream``) list a folder with the same function.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch

from utils.data.decode import DECODING, decode_resized
from utils.data.splits import ImageTensors, listing_fingerprint
from utils.errors import UserError
from utils.files import atomic_write, files_fingerprint

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SPLIT_NAMES = {"train": ("train",), "test": ("test", "val")}
EXPECTED_LAYOUT = "train/<class>/*.jpg and test/<class>/*.jpg (or val/)"


def split_dir(root: Path, split: str) -> Optional[Path]:
    for name in SPLIT_NAMES[split]:
        if (root / name).is_dir():
            return root / name
    return None


def looks_like_a_split(folder: Path) -> bool:
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
    train_dir, test_dir = split_dir(root, "train"), split_dir(root, "test")
    if train_dir is None and test_dir is not None:
        raise UserError(f"--data-dir {root} has {test_dir.name}/ but no train/ folder; add {root}/train/<class>/*.jpg "
                        f"(the images to learn from) beside it")
    if train_dir is None and (root.name in ("train", "test", "val") or looks_like_a_split(root)):
        parent = root.resolve().parent
        raise UserError(f"--data-dir {root} looks like a single split (class folders of images), not a data set; "
                        f"{pass_instead}" + (f": --data-dir {parent}" if split_dir(parent, "train") else
                                             f" ({EXPECTED_LAYOUT})"))
    if train_dir is None:
        raise UserError(f"--data-dir {root} holds no image folder: expected {root}/{EXPECTED_LAYOUT}")
    if test_dir is None:
        raise UserError(f"--data-dir {root} has train/ but no test/ or val/ folder: add {root}/test/<class>/*.jpg "
                        f"(images held out for evaluation)")
    return train_dir, test_dir


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
