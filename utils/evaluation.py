"""Test-time augmentation (TTA): average a model's logits over a few views of each batch.

A network trained with flips and small translations has learned to answer alike for those views;
averaging its logits over them removes part of the noise of any single view (Krizhevsky et al.,
2012, averaged 10 crops; airbench, Jordan 2024, uses flip and 2-pixel translations on CIFAR-10).
All views of a batch are made with tensor operations on the device (no per-image Python):

- ``none``: the images as they are;
- ``flip``: the images and their mirror images (2 views);
- ``flip-translate``: those two, each also shifted by 2 pixels down-right and up-left with zero
  padding, which is the data set's mean after normalization (6 views);
- ``weighted``: the speed records' views and weights (airbench94): the image and its mirror 1/4 each,
  and the image shifted by 1 pixel down-right and up-left (reflect padding), each of those and its
  mirror 1/8 (6 views). The untouched views, the ones closest to the training images, count most.
"""
from __future__ import annotations

import torch
from torch import nn

from utils.batch_augment import crop_with_padding
from utils.config import TTA_MODES
SHIFT = 2  # pixels of the translated views, at any image size (CIFAR's training crops move up to 4)


def tta_views(images: torch.Tensor, mode: str) -> list[torch.Tensor]:
    """The views of a normalized batch (N, C, H, W) that ``mode`` averages over."""
    if mode not in TTA_MODES:
        raise ValueError(f"unknown TTA mode {mode!r}; choose from {', '.join(TTA_MODES)}")
    if mode == "weighted":
        n = images.shape[0]
        shifted = [crop_with_padding(images, 1, torch.full((n, 2), top_left, dtype=torch.long, device=images.device),
                                     "reflect") for top_left in (0, 2)]
        return [images, images.flip(-1), shifted[0], shifted[0].flip(-1), shifted[1], shifted[1].flip(-1)]
    views = [images]
    if mode in ("flip", "flip-translate"):
        views.append(images.flip(-1))
    if mode == "flip-translate":
        n = images.shape[0]
        for top_left in (0, 2 * SHIFT):  # offset 0 of the padded image = shifted by +SHIFT; 2*SHIFT = by -SHIFT
            offsets = torch.full((n, 2), top_left, dtype=torch.long, device=images.device)
            views += [crop_with_padding(view, SHIFT, offsets) for view in views[:2]]
    return views


def view_weights(mode: str, count: int) -> list[float]:
    """How much each of ``count`` views of ``mode`` counts in the average (they sum to 1)."""
    if mode == "weighted":
        return [1 / 4, 1 / 4, 1 / 8, 1 / 8, 1 / 8, 1 / 8]
    return [1 / count] * count


def predict(model: nn.Module, images: torch.Tensor, mode: str = "none") -> torch.Tensor:
    """Logits (N, classes) of ``model`` averaged over the views of ``mode`` (float32)."""
    views = tta_views(images, mode)
    if len(views) == 1:
        return model(images).float()
    # One forward pass for all views (larger batches, fewer launches); memory grows with the views,
    # so lower --eval-batch-size if a large model or image size runs out of it.
    logits = model(torch.cat(views)).float().view(len(views), images.shape[0], -1)
    weights = torch.tensor(view_weights(mode, len(views)), device=logits.device)
    return torch.einsum("v,vnc->nc", weights, logits)
