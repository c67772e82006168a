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

from torch import nn
from torchvision.ops import DropBlock2d, StochasticDepth

# The model options DropBlock adds; families that place DropBlock layers register them (models/__init__.py).
DROPBLOCK_OPTIONS = ("dropblock_prob", "dropblock_size")

__all__ = ["DROPBLOCK_OPTIONS", "DropBlock2d", "StochasticDepth", "drop_path", "drop_path_rates", "dropblock",
           "dropblock_prob_at", "set_dropblock_prob"]


def drop_path_rates(num_blocks: int, drop_path_rate: float) -> list[float]:
    """Linear rule over depth: block ``i`` of ``n`` drops with ``rate * i / (n - 1)`` (first block never)."""
    if num_blocks <= 1:
        return [0.0] * num_blocks
    return [drop_path_rate * i / (num_blocks - 1) for i in range(num_blocks)]


def drop_path(rate: float) -> nn.Module:
    """Stochastic depth on the residual branch (per sample), or identity when ``rate`` is 0."""
    return StochasticDepth(rate, mode="row") if rate > 0 else nn.Identity()


def dropblock(prob: float, block_size: int) -> nn.Module:
    """DropBlock on a feature map, or identity when ``prob`` is 0 (it is then never scheduled)."""
    return DropBlock2d(prob, block_size) if prob > 0 else nn.Identity()


def dropblock_prob_at(progress: float, target_prob: float) -> float:
    """The ramp of the paper: 0 at the start of training, ``target_prob`` at the end (progress in [0, 1])."""
    return target_prob * min(max(progress, 0.0), 1.0)


def set_dropblock_prob(model: nn.Module, prob: float) -> int:
    """Set the drop probability of every DropBlock in ``model``; return how many there are."""
    blocks = [m for m in model.modules() if isinstance(m, DropBlock2d)]
    for block in blocks:
        block.p = prob
    return len(blocks)
