"""The DataLoader path (``--data-mode memory`` and ``stream``): per-image ``transforms.v2`` in worker processes.

For the per-image policies (RandAugment, AutoAugment, TrivialAugment, Random Erasing), and for image
folders too large for memory (a stream: the split is a list of files, decoded in the workers). The
order of each epoch, and the seeds of the workers that augment it, are pure functions of (seed, epoch):
that is what makes a run resumed from an epoch's end continue exactly as an uninterrupted one. (Resumed
mid-epoch, after Ctrl-C, the order is the same, but with workers > 0 the augmentation draws of the
remaining batches differ.)
"""
from __future__ import annotations

from typing import Iterator, Optional

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from utils.augmentation import build_test_transform, build_train_transform
from utils.config import TrainConfig
from utils.data.order import epoch_order, even_batch, shard_window, steps_per_epoch
from utils.data.splits import ImageTensors
from utils.errors import UserError
from utils.seeds import worker_seed


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
    """The DataLoader path (``--data-mode memory``, and ``stream`` over files): per-image transforms in workers.

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


def torch_loaders(config: TrainConfig, train: ImageTensors, evaluated: list[Optional[ImageTensors]],
                  mean: tuple[float, ...], std: tuple[float, ...], device: torch.device, rank: int = 0,
                  world_size: int = 1) -> tuple[TorchLoader, list[Optional[TorchLoader]]]:
    """The training loader (process ``rank``'s shard of every global batch) and one plain loader per split of
    ``evaluated`` (test, validation, probe: None stays None), all moving batches to ``device``."""
    options = dict(num_workers=config.workers, pin_memory=device.type == "cuda")
    train_loader = DataLoader(TensorImageDataset(train, build_train_transform(config, mean, std)),
                              batch_sampler=EpochBatchSampler(len(train), config.batch_size, config.seed, rank,
                                                              world_size),
                              generator=torch.Generator(), **options)
    eval_batch = config.eval_batch_size or config.batch_size
    test_transform = build_test_transform(config, mean, std)

    def plain(split: Optional[ImageTensors], persistent: bool) -> Optional[TorchLoader]:
        if split is None:
            return None
        # The test loader's workers persist (no re-fork per evaluation); the train loader's are started each
        # epoch, because their seeds are set per epoch, which is what makes a resumed run exact.
        loader = DataLoader(TensorImageDataset(split, test_transform), batch_size=even_batch(len(split), eval_batch),
                            shuffle=False, persistent_workers=persistent and config.workers > 0, **options)
        return TorchLoader(loader, device, config.seed)

    evaluation = [plain(split, persistent=index == 0) for index, split in enumerate(evaluated)]
    return TorchLoader(train_loader, device, config.seed, rank), evaluation
