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
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from utils.augmentation import build_test_transform, build_train_transform
from utils.config import QUICK_SUBSET, QUICK_TEST_SUBSET, TrainConfig
from utils.data_sources import ImageTensors, load_splits
from utils.errors import UserError


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
        self.train_loader.generator.manual_seed(self.train_loader.batch_sampler.order_seed(epoch) + 1)


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

    def order_seed(self, epoch: int) -> int:
        """The seed of ``epoch``'s order (and of its workers); any user seed, kept within 63 bits."""
        return (self.seed * 1_000_003 + epoch) % 2**63

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def batches_per_epoch(self) -> int:
        return self.size // self.batch_size if self.drop_last else -(-self.size // self.batch_size)

    def __len__(self) -> int:
        return self.batches_per_epoch() - self.start_batch

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.order_seed(self.epoch)))
        for b in range(self.start_batch, self.batches_per_epoch()):
            yield order[b * self.batch_size:(b + 1) * self.batch_size].tolist()


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


def build_data(config: TrainConfig, device: torch.device = torch.device("cpu")) -> DataBundle:
    """Train and test loaders for ``config`` (resolved), with the class names and normalization."""
    train, test, classes, dataset = load_splits(config)
    mean, std = channel_stats(train.images)
    train = take_subset(train, config.subset, config.seed, QUICK_SUBSET if config.quick else None, "--subset")
    test = take_subset(test, config.test_subset, config.seed, QUICK_TEST_SUBSET if config.quick else None,
                       "--test-subset")
    loader_options = dict(num_workers=config.workers, pin_memory=device.type == "cuda",
                          persistent_workers=False)
    train_loader = DataLoader(TensorImageDataset(train, build_train_transform(config, mean, std)),
                              batch_sampler=EpochBatchSampler(len(train), config.batch_size, config.seed),
                              generator=torch.Generator(), **loader_options)
    # The evaluation batch follows --batch-size: a small batch must bound memory at large --image-size too.
    test_loader = DataLoader(TensorImageDataset(test, build_test_transform(config, mean, std)),
                             batch_size=config.batch_size, shuffle=False, **loader_options)
    return DataBundle(train_loader, test_loader, classes, mean, std, dataset)
