"""Regularization inside the network (learning level 5): stochastic depth and DropBlock.

Both come from ``torchvision.ops`` (``StochasticDepth``, ``DropBlock2d``), which already validate
their input and return the input unchanged in eval mode or at p=0. What torchvision lacks, and lives
here, is the *schedule* of each:

- Stochastic depth (Huang et al., 2016, "Deep Networks with Stochastic Depth"): the drop rate grows
  linearly with depth, from 0 at the first residual block to ``drop_path_rate`` at the last
  (:func:`drop_path_rates`). A dropped block leaves only its shortcut; survivors are scaled by 1/(1-p)
  so the expected output is unchanged.
- DropBlock (Ghiasi et al., 2018, "DropBlock: A regularization method for convolutional networks"):
  drops contiguous squares of a feature map, because neighbouring activations are correlated and
  single-unit dropout barely regularizes a conv net. The paper ramps the drop probability linearly
  from 0 to its target over training (:func:`dropblock_prob_at`, :func:`set_dropblock_prob`).

Label smoothing, the third regularizer of the level, lives in the loss (``nn.CrossEntropyLoss``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import DropBlock2d, StochasticDepth

# The model options DropBlock adds; families that place DropBlock layers register them (models/__init__.py).
DROPBLOCK_OPTIONS = ("dropblock_prob", "dropblock_size")

__all__ = ["DROPBLOCK_OPTIONS", "DropBlock2d", "ScheduledDropBlock", "StochasticDepth", "drop_path", "drop_path_rates",
           "dropblock", "dropblock_layers", "dropblock_prob_at", "set_dropblock_prob"]


def drop_path_rates(num_blocks: int, drop_path_rate: float) -> list[float]:
    """Linear rule over depth: block ``i`` of ``n`` drops with ``rate * i / (n - 1)`` (first block never)."""
    if num_blocks <= 1:
        return [0.0] * num_blocks
    return [drop_path_rate * i / (num_blocks - 1) for i in range(num_blocks)]


def drop_path(rate: float) -> nn.Module:
    """Stochastic depth on the residual branch (per sample), or identity when ``rate`` is 0."""
    return StochasticDepth(rate, mode="row") if rate > 0 else nn.Identity()


class ScheduledDropBlock(DropBlock2d):
    """torchvision's DropBlock2d with its drop probability in a tensor, for a schedule that changes it every step.

    ``DropBlock2d`` keeps ``p`` as a Python float that its forward branches on, so ``torch.compile``
    recompiles the model each time the schedule moves it (and gives up after 8 times). Here ``p`` is a
    0-d buffer: changing it is a device write, and the compiled graph stays the same. The arithmetic
    is torchvision's ``drop_block2d``; the block shrinks to the largest odd size that fits a small
    feature map (torchvision raises on an even one, e.g. 2×2 maps at ``--image-size 16``).
    """

    def __init__(self, p: float, block_size: int, eps: float = 1e-6) -> None:
        super().__init__(p, block_size, inplace=False, eps=eps)
        del self.p  # a buffer of the same name takes its place
        self.register_buffer("p", torch.tensor(float(p)), persistent=False)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return input
        n, c, height, width = input.shape
        size = min(self.block_size, height, width)
        size -= 1 - size % 2  # odd, so the block has a centre
        gamma = self.p * height * width / (size ** 2 * (height - size + 1) * (width - size + 1))
        seeds = (torch.rand(n, c, height - size + 1, width - size + 1, device=input.device) < gamma).to(input.dtype)
        seeds = F.pad(seeds, [size // 2] * 4, value=0)
        keep = 1 - F.max_pool2d(seeds, kernel_size=size, stride=1, padding=size // 2)
        return input * keep * (keep.numel() / (self.eps + keep.sum()))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(p={float(self.p):g}, block_size={self.block_size})"


def dropblock(prob: float, block_size: int) -> nn.Module:
    """DropBlock on a feature map, or identity when ``prob`` is 0 (it is then never scheduled)."""
    return ScheduledDropBlock(prob, block_size) if prob > 0 else nn.Identity()


def dropblock_prob_at(progress: float, target_prob: float) -> float:
    """The ramp of the paper: 0 at the start of training, ``target_prob`` at the end (progress in [0, 1])."""
    return target_prob * min(max(progress, 0.0), 1.0)


def dropblock_layers(model: nn.Module) -> list[nn.Module]:
    """The DropBlock layers of ``model``: found once, since the loop sets their rate every step."""
    return [m for m in model.modules() if isinstance(m, DropBlock2d)]


def set_dropblock_prob(blocks: list[nn.Module], prob: float) -> int:
    """Set the drop probability of every DropBlock in ``blocks`` (:func:`dropblock_layers`); return how many."""
    for block in blocks:
        if isinstance(block, ScheduledDropBlock):
            block.p.fill_(prob)  # a device write: no sync, no recompile
        else:
            block.p = prob
    return len(blocks)
