"""Every seed of a run, derived from the one ``--seed`` in one place.

A run is reproducible, and resumable anywhere, because each random draw is seeded by a pure
function of (seed, epoch, step, process) rather than by whatever state the RNG happens to be in:

- :func:`order_seed`: the data order of an epoch (every data path draws the same permutation);
- :func:`batch_seed`: the batched augmentation of one step (device path);
- :func:`worker_seed`: the per-image augmentation of an epoch's DataLoader workers;
- :func:`epoch_rng_seed`: the global RNGs (dropout, MixUp/CutMix, stochastic depth) at an epoch's start.

Every result is kept within 63 bits, so any user seed (up to 2**64 - 1) gives a valid generator seed.
"""
from __future__ import annotations

import random

import numpy as np
import torch

SEED_RANGE = 2**63  # torch.Generator.manual_seed takes any int, but keeps 64 bits: stay below the sign bit
PRIME_PROCESS = 1_000_000_007  # separates the draws of torchrun processes


def order_seed(seed: int, epoch: int) -> int:
    """The seed of ``epoch``'s data order (and, through the next two, its augmentation)."""
    return (seed * 1_000_003 + epoch) % SEED_RANGE


def batch_seed(seed: int, epoch: int, step: int, rank: int = 0) -> int:
    """The seed of the augmentation of batch ``step`` of ``epoch`` on process ``rank``."""
    return (order_seed(seed, epoch) * 100_003 + step + rank * PRIME_PROCESS) % SEED_RANGE


def worker_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed DataLoader workers derive their RNGs from in ``epoch`` on process ``rank``."""
    return (order_seed(seed, epoch) + 1 + rank * PRIME_PROCESS) % SEED_RANGE


def epoch_rng_seed(seed: int, epoch: int) -> int:
    """The seed of the global RNGs (dropout, mixing) at the start of ``epoch``."""
    return (seed * 7919 + epoch) % SEED_RANGE


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (any user seed)."""
    return torch.Generator().manual_seed(seed % SEED_RANGE)


def seed_everything(seed: int) -> None:
    """Python's, NumPy's and torch's global RNGs (initialization, dropout) from ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
