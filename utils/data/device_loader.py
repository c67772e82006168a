"""The device-resident data path (``--data-mode device``): the whole data set lives on the training device.

CIFAR-10 is 184 MB as uint8 pixels: it fits on any GPU many times over. So instead of a DataLoader
that decodes, augments and copies one image at a time in worker processes, the uint8 tensor is
moved to the device once, and every batch is a gather from it followed by batched augmentation
(``utils/data/batch_augment.py``): no worker processes, no per-image Python, no host-to-device copy per
batch. This is the input pipeline of the CIFAR-10 speed records (airbench; Page's "How to train
your ResNet"); on a CPU the "device" is the CPU and the same code runs there.

Alternating flip (Jordan, 2024, airbench, section 3.6): with ``--alternating-flip`` an image is
not mirrored at random each epoch; it gets one random orientation for even epochs and the other
for odd ones, so every pair of epochs shows each image both ways (random flips repeat an
orientation half the time, which wastes part of a short run).

Determinism: the order of an epoch is :func:`utils.data.order.epoch_order` (the same permutation
as the DataLoader path), and the augmentation of batch ``b`` of epoch ``e`` is drawn from a
generator seeded with (seed, e, b). So every batch is a pure function of (seed, epoch, step): a run
resumed anywhere, even mid-epoch, continues exactly as an uninterrupted one.
"""
from __future__ import annotations

from typing import Iterator, Optional, Sequence

import torch

from utils.config import TrainConfig
from utils.data.batch_augment import BatchAugment
from utils.data.order import epoch_order, even_batch, shard_window, steps_per_epoch
from utils.data.splits import ImageTensors
from utils.seeds import batch_seed, generator, order_seed


def build_batch_augment(config: TrainConfig, mean: Sequence[float], std: Sequence[float], device: torch.device
                        ) -> BatchAugment:
    """The batched form of ``augmentation.build_train_transform`` (standard crop + flip, Cutout)."""
    standard = config.augmentation == "standard"
    padding = config.crop_padding if standard else 0  # as the per-image path (4 px at 32 px unless set)
    return BatchAugment(padding=padding, flip=standard, cutout=config.cutout, mean=mean, std=std, device=device,
                        pad_mode=config.crop_pad_mode)


class DeviceLoader:
    """Batches of a uint8 split held on ``device``: shuffled and augmented there, or plain (evaluation).

    ``shuffle`` True: each epoch in :func:`epoch_order`, the last incomplete batch dropped (as the
    DataLoader path does), process ``rank`` of ``world_size`` taking its shard of each global batch
    (:func:`utils.data.order.shard_window`); False: the split in order, every image once (evaluation).
    """

    def __init__(self, split: ImageTensors, batch_size: int, device: torch.device, mean: Sequence[float],
                 std: Sequence[float], seed: int = 0, shuffle: bool = False,
                 augment: Optional[BatchAugment] = None, alternating_flip: bool = False, rank: int = 0,
                 world_size: int = 1) -> None:
        self.images = split.images.to(device)
        self.labels = split.labels.to(device)
        self.batch_size, self.device, self.seed, self.shuffle = batch_size, device, seed, shuffle
        self.num_images = len(split)
        self.rank, self.world_size = rank, world_size
        self.steps_per_epoch = (steps_per_epoch(self.num_images, batch_size, world_size) if shuffle
                                else -(-self.num_images // batch_size))
        # Evaluation normalizes only; training crops, flips and cuts out as well.
        self.augment = augment or BatchAugment(0, False, None, mean, std, device)
        self.generator = torch.Generator(device=device)
        self.epoch, self.start_step = 0, 0
        # --alternating-flip: each image's orientation in even epochs (odd epochs show the other one)
        self.even_epoch_flip = None
        if alternating_flip:
            draw = generator(order_seed(seed, -1))  # "epoch -1": a draw no epoch uses
            self.even_epoch_flip = (torch.rand(self.num_images, generator=draw) < 0.5).to(device)

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.epoch, self.start_step = epoch, start_step

    def __len__(self) -> int:
        return self.steps_per_epoch - self.start_step

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.shuffle:
            # One copy per epoch (the permutation is drawn on the CPU, identical on every device); from
            # pinned memory, so the host does not wait for the device's queue to drain.
            order = epoch_order(self.num_images, self.seed, self.epoch)
            if self.device.type == "cuda":
                order = order.pin_memory()
            order = order.to(self.device, non_blocking=True)
        else:
            order = None
        for step in range(self.start_step, self.steps_per_epoch):
            if order is not None:
                indices = order[shard_window(step, self.batch_size, self.rank, self.world_size)]
            else:
                indices = slice(step * self.batch_size, (step + 1) * self.batch_size)
            images, labels = self.images[indices], self.labels[indices]
            # host-side seeding: no device sync
            self.generator.manual_seed(batch_seed(self.seed, self.epoch, step, self.rank))
            flip = None
            if self.even_epoch_flip is not None:
                flip = self.even_epoch_flip[indices] ^ (self.epoch % 2 == 1)
            yield self.augment(images, self.generator, flip), labels


def device_loaders(config: TrainConfig, train: ImageTensors, evaluated: list[Optional[ImageTensors]],
                   mean: Sequence[float], std: Sequence[float], device: torch.device, rank: int = 0,
                   world_size: int = 1) -> tuple[DeviceLoader, list[Optional[DeviceLoader]]]:
    """The training loader (shuffled, augmented in whole batches, process ``rank``'s shard of every global batch)
    and one plain loader per split of ``evaluated`` (test, validation, probe: None stays None), all on ``device``."""
    eval_batch = config.eval_batch_size or config.batch_size
    train_loader = DeviceLoader(train, config.batch_size, device, mean, std, seed=config.seed, shuffle=True,
                                augment=build_batch_augment(config, mean, std, device),
                                alternating_flip=config.alternating_flip, rank=rank, world_size=world_size)
    evaluation = [DeviceLoader(split, even_batch(len(split), eval_batch), device, mean, std) if split is not None
                  else None for split in evaluated]
    return train_loader, evaluation
