"""Which training images, in which order, on which process; and the statistics measured on them.

Pure functions of their arguments (a seed among them), shared by every data path, so that the
DataLoader, device-resident and stream paths see the same images in the same order:

- subsets and held-out splits: stratified and seeded (:func:`stratified_subset`), never "the first N",
  since an image folder is listed class by class;
- the order of an epoch (:func:`epoch_order`), its steps, and the share of each torchrun process
  (:func:`shard_window`, :func:`shard`);
- the per-channel normalization statistics (:func:`channel_stats`; sampled and cached for a stream).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch

from utils.data.splits import ImageFiles, ImageTensors
from utils.errors import UserError
from utils.files import files_fingerprint, write_json
from utils.seeds import generator, order_seed

STATS_SAMPLE = 2000  # images decoded to estimate the normalization statistics of a streamed folder


# ------------------------------------------------------------------------------------ which images
def stratified_subset(labels: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """Indices of ``size`` samples with the class proportions of ``labels``, chosen with ``seed``."""
    if size > len(labels):
        raise UserError(f"--subset {size} is larger than the training set ({len(labels)} images); "
                        f"use at most {len(labels)}")
    draw = generator(seed)
    classes, counts = labels.unique(return_counts=True)
    quotas = counts.double() * size / len(labels)
    taken = quotas.floor().long()
    # Largest remainders get the images the floor left over, so the quotas sum to ``size``.
    for i in torch.argsort(quotas - taken, descending=True)[: size - int(taken.sum())]:
        taken[i] += 1
    chosen = []
    for cls, k in zip(classes, taken):
        members = (labels == cls).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=draw)[:k]])
    return torch.cat(chosen).sort().values


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



# ------------------------------------------------------------------------------------ in which order
def epoch_order(size: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled indices of ``epoch``: the same on every data path and every device."""
    return torch.randperm(size, generator=generator(order_seed(seed, epoch)))


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



# ------------------------------------------------------------------------------------ statistics
def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, 3, H, W), in [0, 1] units."""
    sample = images[:: max(1, len(images) // 10000)].double() / 255  # 10,000 images estimate it to 1e-3
    mean = sample.mean(dim=(0, 2, 3))
    std = sample.std(dim=(0, 2, 3))
    return tuple(round(v, 4) for v in mean.tolist()), tuple(round(max(v, 1e-3), 4) for v in std.tolist())


def sampled_channel_stats(split: ImageFiles, seed: int, cache_dir: Optional[Path]
                          ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (in [0, 1] units) of a seeded sample of a streamed split's images, cached."""
    count = min(STATS_SAMPLE, len(split))
    chosen = torch.randperm(len(split), generator=generator(seed))[:count].sort().values
    sample = [split.files[i] for i in chosen.tolist()]
    key = files_fingerprint(f"{sample[0][0].parent.parent.resolve()}|{split.images.image_size}|{count}|{seed}", sample)
    cache_file = cache_dir / f"stream-stats-{key}.json" if cache_dir is not None else None
    if cache_file is not None and cache_file.exists():
        try:
            cached = json.loads(cache_file.read_text())
            return tuple(cached["mean"]), tuple(cached["std"])
        except (ValueError, KeyError, OSError):
            pass  # a broken cache is recomputed
    mean, std = channel_stats(split.images[chosen])
    if cache_file is not None:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            write_json(cache_file, {"mean": mean, "std": std})
        except (OSError, UserError):
            pass  # the statistics are recomputed next time
    return mean, std
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

