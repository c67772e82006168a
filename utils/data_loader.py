"""``build_data(config)``: the top of the data layer, where a run's data mode is decided and its loaders built.

The layer (``utils/data/``) flows one way, bottom to top:

1. one image file decoded (``decode.py``); a split of images, decoded or as files (``splits.py``);
2. the sources (``sources.py``): CIFAR-10/100, an image folder (``image_folder.py``), synthetic data;
3. beside them, which images in which order (``order.py``: subsets, epoch order, shards, normalization
   statistics) and whether a folder fits in memory (``memory_fit.py``);
4. the loaders: the DataLoader path (``torch_loader.py``: per-image ``transforms.v2`` in worker processes,
   ``memory``, and ``stream`` over files) and the device-resident path (``device_loader.py``: ``device``,
   augmented in whole batches by ``batch_augment.py``);
5. :func:`build_data`, which decides the data mode in one place (:func:`choose_data_mode`) and records it
   in the :class:`DataBundle` it returns.

Every path gives the batches of an epoch in the same order for the same (seed, epoch): a resumed run
continues as an uninterrupted one.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Protocol

import torch

from utils.config import QUICK_SUBSET, QUICK_TEST_SUBSET, TrainConfig
from utils.data.batch_augment import normalize
from utils.data.device_loader import device_loaders
from utils.data.image_folder import list_image_folder
from utils.data.order import channel_stats, hold_out, sampled_channel_stats, shard, stratified_subset, take_subset
from utils.data.sources import cache_dir_of, load_splits, resolve_dataset
from utils.data.memory_fit import decoded_bytes, should_stream
from utils.data.torch_loader import torch_loaders
from utils.errors import UserError
from utils.seeds import generator


class BatchLoader(Protocol):
    """What the trainer sees of a data path: every path (DataLoader, device-resident) offers this."""

    num_images: int  # images in the split
    batch_size: int
    steps_per_epoch: int  # batches in a full epoch

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Fix the order and augmentation of ``epoch``; start at batch ``start_step`` (a resumed run)."""

    def __len__(self) -> int:
        """Batches left in the epoch set by :meth:`set_epoch`."""

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(normalized float images (N, 3, H, W), int64 labels (N,)), both on the training device."""


@dataclass
class DataBundle:
    """What a trainer needs: loaders, class names and the normalization used."""

    train_loader: BatchLoader
    test_loader: BatchLoader
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dataset: str
    data_mode: str = "memory"
    val_loader: Optional[BatchLoader] = None  # --val-split: held-out training images, to choose best.pt on
    train_images: Optional[torch.Tensor] = None  # the training split, uint8 (N, 3, H, W), for data-fitted layers
    test_images: Optional[torch.Tensor] = None  # the test split in loader order, uint8, to show predictions on
    train_labels: Optional[torch.Tensor] = None  # labels of ``train_images``, for class-stratified samples
    probe_loader: Optional[BatchLoader] = None  # --probe-images: a fixed stratified sample of the test images
    train_fingerprint: str = ""  # which images the training split was drawn from (checked when a run resumes)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.train_loader.set_epoch(epoch, start_step)

    def normalized_train_sample(self, count: int, device: torch.device, seed: int = 0) -> torch.Tensor:
        """``count`` training images, class-stratified and drawn with ``seed``, normalized float32, on ``device``.

        Never "the first ``count``": an image folder is listed class by class, so those would all be
        airplanes, and a layer fitted to them (speednet's whitening) would see one class.
        """
        count = min(count, len(self.train_images))
        chosen = (stratified_subset(self.train_labels, count, seed) if self.train_labels is not None
                  else torch.randperm(len(self.train_images), generator=generator(seed))[:count])
        images = self.train_images[chosen].to(device)
        return normalize(images, torch.tensor(self.mean, device=device), torch.tensor(self.std, device=device))


def choose_data_mode(config: TrainConfig, dataset: str) -> str:
    """The data mode of this run: decided here, and nowhere else.

    The resolved ``config.data_mode`` (``auto`` became ``device``, or ``memory`` for per-image
    policies) stands, except that an image folder too large for memory is streamed when nobody chose
    the mode. A mode the user chose is never second-guessed; one a preset chose (``--preset speed``:
    ``device``, for its alternating flip) is refused with a line rather than silently replaced.
    """
    if dataset != "folder" or config.data_mode == "stream":
        return config.data_mode
    chosen_by = ("you" if "data_mode" in config.user_settings else
                 f"--preset {config.preset}" if "data_mode" in config.preset_settings else None)
    if chosen_by == "you":
        return config.data_mode
    listing = list_image_folder(Path(config.data_dir))
    count = len(listing.train) + len(listing.test)
    if not should_stream(count, config.image_size):
        return config.data_mode
    size = (f"{config.data_dir}: {count} images at {config.image_size} px would take "
            f"{decoded_bytes(count, config.image_size) / 2**30:.1f} GiB decoded, more than half the memory available")
    if chosen_by is not None:
        raise UserError(f"{size}; {chosen_by} keeps the data set in memory (--data-mode {config.data_mode}"
                        + (", for its --alternating-flip" if config.alternating_flip else "")
                        + "): use a smaller --image-size or free some memory")
    print(f"{size}; streaming them from disk (--data-mode stream)", flush=True)
    return "stream"


def build_data(config: TrainConfig, device: torch.device = torch.device("cpu"), rank: int = 0,
               world_size: int = 1) -> DataBundle:
    """Train and test loaders for ``config`` (resolved), with the class names and normalization.

    ``config.data_mode`` picks the path: ``device`` keeps the uint8 tensors on ``device`` and augments
    whole batches there (``utils/data/device_loader.py``); ``memory`` is a DataLoader with per-image
    transforms. Both give batches in the same order for the same (seed, epoch). Under torchrun
    (``rank`` of ``world_size``) each process trains on its shard of every global batch and evaluates
    its share of the test (and validation) images; the trainer adds the sums over processes.
    """
    dataset = resolve_dataset(config)
    data_mode = choose_data_mode(config, dataset)
    streamed = data_mode == "stream"  # files decoded in the DataLoader workers each epoch
    train, test, classes = load_splits(config, dataset, as_files=streamed)
    val = None
    if config.val_split is not None:
        train, val = hold_out(train, config.val_split, config.seed)
    if streamed:
        mean, std = sampled_channel_stats(train, config.seed, cache_dir_of(config))
    else:
        mean, std = channel_stats(train.images)
    train = take_subset(train, config.subset, config.seed, QUICK_SUBSET if config.quick else None, "--subset")
    test = take_subset(test, config.test_subset, config.seed, QUICK_TEST_SUBSET if config.quick else None,
                       "--test-subset")
    test_images = test.images  # all of them, for pictures of predictions (the loaders may hold a shard)
    probe = take_subset(test, min(config.probe_images, len(test)), config.seed, None, "--probe-images") \
        if config.probe_images else None
    test, val, probe = (shard(split, rank, world_size) if split is not None else None for split in (test, val, probe))
    build_loaders = device_loaders if data_mode == "device" else torch_loaders
    train_loader, (test_loader, val_loader, probe_loader) = build_loaders(
        config, train, [test, val, probe], mean, std, device, rank, world_size)
    return DataBundle(train_loader, test_loader, classes, mean, std, dataset, data_mode, val_loader, train.images,
                      test_images, train.labels, probe_loader, train.fingerprint)
