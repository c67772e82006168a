"""Data loaders: the decoded uint8 tensors of ``utils/data_sources.py``, batched for training.

``build_data(config)`` is the one entry point. The source (CIFAR-10/100, an image folder, synthetic)
is decoded by ``utils/data_sources.py`` into :class:`ImageTensors`; what follows is the same for
every source:

- normalization statistics are measured on the training images (per channel, mean and std);
- ``--subset`` takes a stratified, seeded sample of the training images;
- the DataLoader path applies per-image ``transforms.v2`` in worker processes;
- a later device-resident fast path can move the same uint8 tensors to the GPU once and augment
  whole batches there (airbench-style) without touching the sources.

The data order of each epoch, and the seeds of the worker processes that augment it, are pure
functions of (seed, epoch): that is what makes a run resumed from an epoch's end continue exactly as
an uninterrupted one. (Resumed mid-epoch, after Ctrl-C, the order is the same, but with workers > 0
the augmentation draws of the remaining batches differ.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Protocol

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from utils.augmentation import build_test_transform, build_train_transform
from utils.config import QUICK_SUBSET, QUICK_TEST_SUBSET, TrainConfig
from utils.data_sources import ImageTensors, cache_dir_of, load_splits
from utils.streaming import ImageFiles, sampled_channel_stats
from utils.errors import UserError


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
        from utils.batch_augment import normalize

        count = min(count, len(self.train_images))
        chosen = (stratified_subset(self.train_labels, count, seed) if self.train_labels is not None
                  else torch.randperm(len(self.train_images), generator=torch.Generator().manual_seed(seed))[:count])
        images = self.train_images[chosen].to(device)
        return normalize(images, torch.tensor(self.mean, device=device), torch.tensor(self.std, device=device))


# ------------------------------------------------------------------------------------ subsets and stats
def stratified_subset(labels: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """Indices of ``size`` samples with the class proportions of ``labels``, chosen with ``seed``."""
    if size > len(labels):
        raise UserError(f"--subset {size} is larger than the training set ({len(labels)} images); "
                        f"use at most {len(labels)}")
    generator = torch.Generator().manual_seed(seed % 2**63)
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


def order_seed(seed: int, epoch: int) -> int:
    """The seed of ``epoch``'s data order (and augmentation); any user seed, kept within 63 bits."""
    return (seed * 1_000_003 + epoch) % 2**63


def epoch_order(size: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled indices of ``epoch``: the same on every data path and every device."""
    return torch.randperm(size, generator=torch.Generator().manual_seed(order_seed(seed, epoch)))


def steps_per_epoch(size: int, batch_size: int, world_size: int = 1) -> int:
    """Optimizer steps in an epoch of ``size`` images at ``batch_size`` per process.

    The last, incomplete global batch is dropped (BatchNorm cannot train on a batch of one), unless
    the data holds fewer than one global batch: then one step on all of it (single process only).
    """
    global_batch = batch_size * world_size
    if world_size > 1 and size < global_batch:
        raise UserError(f"--batch-size {batch_size} x {world_size} processes = {global_batch} is more than the "
                        f"{size} training images; use a smaller --batch-size")
    return size // global_batch if size > global_batch else 1


def shard_window(step: int, batch_size: int, rank: int = 0, world_size: int = 1) -> slice:
    """The positions in the epoch's order that process ``rank`` trains on at ``step``.

    Global batch ``step`` is ``order[step·B·W : (step+1)·B·W]``, the batch a single process with
    batch ``B·W`` would see; process ``r`` takes its ``r``-th run of ``B``. The shards of a step are
    disjoint and together they are the global batch.
    """
    start = step * batch_size * world_size + rank * batch_size
    return slice(start, start + batch_size)


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
        self.loader.generator.manual_seed((order_seed(self.seed, epoch) + 1 + self.rank * 1_000_000_007) % 2**63)

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


def hold_out(split: ImageTensors, size: int, seed: int) -> tuple[ImageTensors, ImageTensors]:
    """(the rest, ``size`` images held out): a stratified, seeded validation split of the training images."""
    if size >= len(split):
        raise UserError(f"--val-split {size} leaves no training images (the training set has {len(split)}); "
                        f"use at most {len(split) - 1}")
    held = stratified_subset(split.labels, size, seed + 1)  # another draw than --subset's
    keep = torch.ones(len(split), dtype=torch.bool)
    keep[held] = False
    return split.select(keep.nonzero().flatten()), split.select(held)


def take_subset(split: ImageTensors, size: int | None, seed: int, quick_size: int | None, flag: str
                ) -> ImageTensors:
    """A stratified subset of ``split``; with ``--quick``'s own size on a smaller set, all of it (said)."""
    if size is None or size == len(split):
        return split
    if size > len(split) and size == quick_size:
        print(f"--quick: the data has only {len(split)} images for its {flag} of {size}; using all of them",
              flush=True)
        return split
    if size > len(split):
        raise UserError(f"{flag} {size} is larger than the {'training' if flag == '--subset' else 'test'} set "
                        f"({len(split)} images); use at most {len(split)}")
    return split.select(stratified_subset(split.labels, size, seed))


def shard(split: ImageTensors, rank: int, world_size: int) -> ImageTensors:
    """Every ``world_size``-th image from ``rank`` on: a process's share of an evaluation split."""
    return split if world_size == 1 else split.select(torch.arange(rank, len(split), world_size))


def build_data(config: TrainConfig, device: torch.device = torch.device("cpu"), rank: int = 0,
               world_size: int = 1) -> DataBundle:
    """Train and test loaders for ``config`` (resolved), with the class names and normalization.

    ``config.data_mode`` picks the path: ``device`` keeps the uint8 tensors on ``device`` and augments
    whole batches there (``utils/device_loader.py``); ``memory`` is a DataLoader with per-image
    transforms. Both give batches in the same order for the same (seed, epoch). Under torchrun
    (``rank`` of ``world_size``) each process trains on its shard of every global batch and evaluates
    its share of the test (and validation) images; the trainer adds the sums over processes.
    """
    train, test, classes, dataset = load_splits(config)
    val = None
    if config.val_split is not None:
        train, val = hold_out(train, config.val_split, config.seed)
    streamed = isinstance(train, ImageFiles)  # --data-mode stream: files decoded in the workers each epoch
    if streamed:
        mean, std = sampled_channel_stats(train, config.seed, cache_dir_of(config))
    else:
        mean, std = channel_stats(train.images)
    train = take_subset(train, config.subset, config.seed, QUICK_SUBSET if config.quick else None, "--subset")
    test = take_subset(test, config.test_subset, config.seed, QUICK_TEST_SUBSET if config.quick else None,
                       "--test-subset")
    eval_batch = config.eval_batch_size or config.batch_size
    test_images = test.images  # all of them, for pictures of predictions (the loaders may hold a shard)
    test = shard(test, rank, world_size)
    val = shard(val, rank, world_size) if val is not None else None
    if config.data_mode == "device" and not streamed:
        from utils.device_loader import DeviceLoader, build_batch_augment

        train_loader = DeviceLoader(train, config.batch_size, device, mean, std, seed=config.seed, shuffle=True,
                                    augment=build_batch_augment(config, mean, std, device),
                                    alternating_flip=config.alternating_flip, rank=rank, world_size=world_size)
        test_loader = DeviceLoader(test, eval_batch, device, mean, std)
        val_loader = DeviceLoader(val, eval_batch, device, mean, std) if val is not None else None
        return DataBundle(train_loader, test_loader, classes, mean, std, dataset, "device", val_loader, train.images,
                          test_images, train.labels)
    loader_options = dict(num_workers=config.workers, pin_memory=device.type == "cuda")
    train_loader = DataLoader(TensorImageDataset(train, build_train_transform(config, mean, std)),
                              batch_sampler=EpochBatchSampler(len(train), config.batch_size, config.seed, rank, world_size),
                              generator=torch.Generator(), **loader_options)
    # The evaluation batch follows --batch-size (twice it by default: no gradients are kept), so a
    # small batch bounds memory at a large --image-size too.
    # The test loader's workers persist (no re-fork per evaluation); the train loader's are started
    # each epoch, because their seeds are set per epoch, which is what makes a resumed run exact.
    test_loader = DataLoader(TensorImageDataset(test, build_test_transform(config, mean, std)),
                             batch_size=eval_batch, shuffle=False, persistent_workers=config.workers > 0,
                             **loader_options)
    val_loader = None
    if val is not None:
        val_loader = TorchLoader(DataLoader(TensorImageDataset(val, build_test_transform(config, mean, std)),
                                            batch_size=eval_batch, shuffle=False, **loader_options), device, config.seed)
    return DataBundle(TorchLoader(train_loader, device, config.seed, rank), TorchLoader(test_loader, device, config.seed),
                      classes, mean, std, dataset, "stream" if streamed else "memory", val_loader, train.images,
                      test_images, train.labels)
