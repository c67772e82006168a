"""Augmentation of whole batches on the device: crop, flip, Cutout and normalization as tensor ops.

The per-image transforms of ``utils/augmentation.py`` run in DataLoader workers, one image at a
time, in Python. On a GPU that is the bottleneck: the model needs tens of thousands of images a
second. Here the same augmentations are a handful of tensor operations on a whole uint8 batch
already on the device (airbench's approach, Jordan 2024, arXiv 2404.00498):

- random crop with zero padding = one gather with per-image row and column offsets;
- horizontal flip = ``torch.where`` between the batch and its mirror;
- Cutout = a mask built from per-image square bounds by broadcasting;
- normalization = one multiply-add from uint8.

Each function takes its random parameters as tensors, so the tests can check it against the
per-image definition (``v2.RandomCrop``, ``v2.functional.horizontal_flip``, ``augmentation.cutout``)
with the same parameters; :class:`BatchAugment` draws them from a generator.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F


def crop_with_padding(images: torch.Tensor, padding: int, offsets: torch.Tensor, pad_mode: str = "zeros"
                      ) -> torch.Tensor:
    """Crop every image of a padded batch at its own offset.

    images: (N, C, H, W), any dtype; offsets: (N, 2) int64 (top, left) in [0, 2 * padding].
    Returns (N, C, H, W): image n is ``pad(images[n])[:, top:top + H, left:left + W]``, the same as
    ``v2.RandomCrop(H, padding=padding, padding_mode=...)`` choosing that top-left corner. ``pad_mode``
    zeros fills the border with 0, reflect mirrors the image into it (no artificial edge to learn).
    """
    n, _, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding), mode="reflect" if pad_mode == "reflect" else "constant")
    rows = offsets[:, 0, None] + torch.arange(height, device=images.device)  # (N, H)
    cols = offsets[:, 1, None] + torch.arange(width, device=images.device)  # (N, W)
    batch = torch.arange(n, device=images.device)[:, None, None]
    # Advanced indices separated by a slice come first: the result is (N, H, W, C), i.e. channels_last.
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def flip_where(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror the images (N, C, H, W) whose entry of ``flip`` (N,) bool is True."""
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def cutout_masks(height: int, width: int, size: int, centers: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) bool, True inside each ``size`` square centred at ``centers`` (N, 2) (clipped at borders)."""
    top_left = centers - size // 2
    ys = torch.arange(height, device=centers.device)
    xs = torch.arange(width, device=centers.device)
    inside_y = (ys >= top_left[:, 0, None]) & (ys < top_left[:, 0, None] + size)  # (N, H)
    inside_x = (xs >= top_left[:, 1, None]) & (xs < top_left[:, 1, None] + size)  # (N, W)
    return (inside_y[:, :, None] & inside_x[:, None, :])[:, None]


def normalization(mean: torch.Tensor, std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift), shaped (1, C, 1, 1): ``(x / 255 - mean) / std`` is ``x · scale + shift``."""
    return (1.0 / (255.0 * std)).view(1, -1, 1, 1), (-mean / std).view(1, -1, 1, 1)


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """uint8 (N, 3, H, W) → ``(x / 255 - mean) / std`` as ``dtype``, in one multiply-add; keeps the memory format."""
    scale, shift = normalization(mean, std)
    return torch.addcmul(shift.to(dtype), images.to(dtype), scale.to(dtype))


class BatchAugment:
    """The standard augmentation (crop + flip) and Cutout on a uint8 batch; returns a normalized float batch.

    ``padding`` 0 turns the crop off, ``flip`` False the flip, ``cutout`` None the Cutout. Random
    parameters come from the ``generator`` passed to each call, so a batch is a function of its seed.
    """

    def __init__(self, padding: int, flip: bool, cutout: Optional[int], mean: Sequence[float], std: Sequence[float],
                 device: torch.device, pad_mode: str = "zeros") -> None:
        self.padding, self.flip, self.cutout, self.pad_mode = padding, flip, cutout, pad_mode
        # computed once: every batch is then one multiply-add (float32)
        self.scale, self.shift = normalization(torch.tensor(mean, dtype=torch.float32, device=device),
                                               torch.tensor(std, dtype=torch.float32, device=device))

    def __call__(self, images: torch.Tensor, generator: Optional[torch.Generator] = None,
                 flip: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``flip`` (N,) bool: which images to mirror, chosen by the caller (alternating flip); None draws them."""
        n, _, height, width = images.shape
        device = images.device
        if self.padding:
            offsets = torch.randint(0, 2 * self.padding + 1, (n, 2), generator=generator, device=device)
            images = crop_with_padding(images, self.padding, offsets, self.pad_mode)
        if self.flip:
            flip = flip if flip is not None else torch.rand(n, generator=generator, device=device) < 0.5
            images = flip_where(images, flip)
        out = torch.addcmul(self.shift, images.float(), self.scale)
        if self.cutout:
            centers = torch.stack([torch.randint(0, height, (n,), generator=generator, device=device),
                                   torch.randint(0, width, (n,), generator=generator, device=device)], dim=1)
            out = out.masked_fill(cutout_masks(height, width, self.cutout, centers), 0.0)
        return out
