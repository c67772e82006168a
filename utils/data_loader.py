"""Data loaders: ``build_data(config)``, the top of the data layer, and the DataLoader path.

The layer flows one way, bottom to top:

1. sources (``utils/data_sources.py``): CIFAR-10/100, an image folder, synthetic data, decoded into
   uint8 tensors (:class:`ImageTensors`) or, for a stream, listed as files (:class:`ImageFiles`);
2. beside them, which images in which order (``utils/data_order.py``: subsets, epoch order, shards,
   normalization statistics) and whether a folder fits in memory (``utils/streaming.py``);
3. the loaders: the DataLoader path here (per-image ``transforms.v2`` in worker processes: ``memory``,
   and ``stream`` over files), the device-resident path (``utils/device_loader.py``: ``device``);
4. :func:`build_data`, which decides the data mode in one place (:func:`choose_data_mode`) and
   records it in the :class:`DataBundle` it returns.

The data order of each epoch, and the seeds of the worker processes that augment it, are pure
functions of (seed, epoch): that is what makes a run resumed from an epoch's end continue exactly as
an uninterrupted one. (Resumed mid-epoch, after Ctrl-C, the order is the same, but with workers > 0
the augmentation draws of the remaining batches differ.)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Protocol

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from utils.augmentation import build_test_transform, build_train_transform
from utils.batch_augment import normalize
from utils.config import QUICK_SUBSET, QUICK_TEST_SUBSET, TrainConfig
from utils.data_order import (channel_stats, epoch_order, hold_out, sampled_channel_stats, shard, shard_window,
                              steps_per_epoch, stratified_subset, take_subset)
from utils.data_sources import ImageTensors, cache_dir_of, list_image_folder, load_splits, resolve_dataset
from utils.device_loader import DeviceLoader, build_batch_augment
from utils.errors import UserError
from utils.seeds import generator, worker_seed
from utils.streaming import decoded_bytes, should_stream


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
    the middle of an epoch sees the batches an uninterrupted run would. Under torchrun each process
    (``rank`` of ``world_size``) takes its shard of every global batch (:func:`shard_window`).
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.steps = steps_per_epoch(size, batch_size, world_size)
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def batches_per_epoch(self) -> int:
        return self.steps

    def __len__(self) -> int:
        return self.steps - self.start_batch

    def __iter__(self) -> Iterator[list[int]]:
        order = epoch_order(self.size, self.seed, self.epoch)
        for b in range(self.start_batch, self.steps):
            yield order[shard_window(b, self.batch_size, self.rank, self.world_size)].tolist()


class TorchLoader:
    """The DataLoader path (``--data-mode memory``): per-image transforms in worker processes.

    For the per-image policies (RandAugment, AutoAugment, TrivialAugment, Random Erasing). Batches
    are moved to ``device`` (pinned memory, non-blocking) as they are yielded.
    """

    def __init__(self, loader: DataLoader, device: torch.device, seed: int, rank: int = 0) -> None:
        self.loader, self.device, self.seed, self.rank = loader, device, seed, rank
        self.dataset = loader.dataset
        self.num_images = len(loader.dataset)
        sampler = loader.batch_sampler
        self.batch_size = sampler.batch_size if isinstance(sampler, EpochBatchSampler) else loader.batch_size
        self.steps_per_epoch = len(sampler) if not isinstance(sampler, EpochBatchSampler) else sampler.batches_per_epoch()

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.loader.batch_sampler.set_epoch(epoch, start_step)
        # Worker processes seed their RNG (and so the augmentation) from the loader's generator.
        self.loader.generator.manual_seed(worker_seed(self.seed, epoch, self.rank))

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        try:
            for images, labels in self.loader:
                yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
        except UserError as error:  # raised in a worker (a corrupt file of a stream): keep its own line
            raise UserError(worker_message(str(error))) from None


def worker_message(message: str) -> str:
    """The original message of an error a DataLoader worker raised (the loader wraps it in a traceback)."""
    if not message.startswith("Caught "):
        return message
    last = message.strip().splitlines()[-1]
    return last.split(": ", 1)[1] if ": " in last else last


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


def even_batch(images: int, batch: int) -> int:
    """The evaluation batch for a split of ``images``: the largest divisor of it from ``batch // 2`` to ``batch``
    (10,000 test images in batches of 250, not 39 of 256 and one of 16), else ``batch``.

    Evaluation results do not depend on the batch; a GPU does: every new batch shape costs cuDNN a round of
    autotuning and a CUDA graph another capture.
    """
    if 0 < images <= batch:
        return images  # one batch
    for size in range(batch, batch // 2 - 1, -1):
        if size > 0 and images % size == 0:
            return size
    return batch


def build_data(config: TrainConfig, device: torch.device = torch.device("cpu"), rank: int = 0,
               world_size: int = 1) -> DataBundle:
    """Train and test loaders for ``config`` (resolved), with the class names and normalization.

    ``config.data_mode`` picks the path: ``device`` keeps the uint8 tensors on ``device`` and augments
    whole batches there (``utils/device_loader.py``); ``memory`` is a DataLoader with per-image
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
    eval_batch = config.eval_batch_size or config.batch_size
    test_images = test.images  # all of them, for pictures of predictions (the loaders may hold a shard)
    probe = take_subset(test, min(config.probe_images, len(test)), config.seed, None, "--probe-images") \
        if config.probe_images else None
    test, val, probe = (shard(split, rank, world_size) if split is not None else None for split in (test, val, probe))
    if data_mode == "device":
        def evaluation_loader(split: Optional[ImageTensors]) -> Optional[DeviceLoader]:
            return DeviceLoader(split, even_batch(len(split), eval_batch), device, mean, std) if split is not None else None

        train_loader = DeviceLoader(train, config.batch_size, device, mean, std, seed=config.seed, shuffle=True,
                                    augment=build_batch_augment(config, mean, std, device),
                                    alternating_flip=config.alternating_flip, rank=rank, world_size=world_size)
        return DataBundle(train_loader, evaluation_loader(test), classes, mean, std, dataset, "device",
                          evaluation_loader(val), train.images, test_images, train.labels, evaluation_loader(probe),
                          train.fingerprint)
    loader_options = dict(num_workers=config.workers, pin_memory=device.type == "cuda")
    train_loader = DataLoader(TensorImageDataset(train, build_train_transform(config, mean, std)),
                              batch_sampler=EpochBatchSampler(len(train), config.batch_size, config.seed, rank, world_size),
                              generator=torch.Generator(), **loader_options)
    # The evaluation batch follows --batch-size (twice it by default: no gradients are kept), so a
    # small batch bounds memory at a large --image-size too.
    # The test loader's workers persist (no re-fork per evaluation); the train loader's are started
    # each epoch, because their seeds are set per epoch, which is what makes a resumed run exact.
    test_loader = DataLoader(TensorImageDataset(test, build_test_transform(config, mean, std)),
                             batch_size=even_batch(len(test), eval_batch), shuffle=False,
                             persistent_workers=config.workers > 0,
                             **loader_options)

    def evaluation_loader(split) -> Optional[TorchLoader]:
        if split is None:
            return None
        return TorchLoader(DataLoader(TensorImageDataset(split, build_test_transform(config, mean, std)),
                                      batch_size=even_batch(len(split), eval_batch), shuffle=False, **loader_options),
                           device, config.seed)

    return DataBundle(TorchLoader(train_loader, device, config.seed, rank), TorchLoader(test_loader, device, config.seed),
                      classes, mean, std, dataset, data_mode, evaluation_loader(val), train.images,
                      test_images, train.labels, evaluation_loader(probe), train.fingerprint)
