"""Data augmentation (learning level 4): per-image transforms and per-batch mixing.

Per image (in the data loader, on uint8 CHW tensors), all from ``torchvision.transforms.v2``:
- ``standard``: random crop with 4-pixel padding (``--crop-padding``) + horizontal flip, the CIFAR baseline since
  He et al. (2016);
- ``randaugment``: RandAugment (Cubuk et al., 2020), N random ops at magnitude M;
- ``autoaugment``: AutoAugment's learned CIFAR-10 policy (Cubuk et al., 2019);
- ``trivialaugment``: TrivialAugmentWide (Müller & Hutter, 2021), one op at a random magnitude;
  the three policies run after the standard crop and flip;
- Random Erasing (Zhong et al., 2020): ``v2.RandomErasing`` on the normalized image;
- Cutout (DeVries & Taylor, 2017): written here, because torchvision has no fixed-size cutout
  (RandomErasing draws its area and aspect, and keeps the box inside the image). Cutout's square
  is centred anywhere, so it is clipped at the borders, as in the paper.

Per batch (in the training step): MixUp (Zhang et al., 2018) and CutMix (Yun et al., 2019) through
``v2.MixUp`` / ``v2.CutMix``; they return soft targets that ``nn.CrossEntropyLoss`` takes directly
(label smoothing included).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from utils.config import TrainConfig


# ---------------------------------------------------------------------------------------- Cutout
def cutout(image: torch.Tensor, size: int, center: Optional[tuple[int, int]] = None) -> torch.Tensor:
    """Zero a ``size``×``size`` square centred at ``center`` (random if None), clipped at the borders.

    ``image``: (..., H, W); returns a new tensor. Zero is the data set's mean after normalization.
    """
    height, width = image.shape[-2:]
    if center is None:
        cy, cx = int(torch.randint(height, ())), int(torch.randint(width, ()))
    else:
        cy, cx = center
    top, left = max(0, cy - size // 2), max(0, cx - size // 2)
    bottom, right = min(height, cy - size // 2 + size), min(width, cx - size // 2 + size)
    out = image.clone()
    out[..., top:bottom, left:right] = 0
    return out


class Cutout(nn.Module):
    """Module form of :func:`cutout`, for ``v2.Compose``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"cutout size must be at least 1, got {size}")
        self.size = size

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return cutout(image, self.size)

    def extra_repr(self) -> str:
        return f"size={self.size}"


# ---------------------------------------------------------------------------------------- per image
def _policy(config: TrainConfig) -> list[nn.Module]:
    if config.augmentation == "randaugment":
        return [v2.RandAugment(num_ops=config.randaugment_n, magnitude=config.randaugment_m)]
    if config.augmentation == "autoaugment":
        return [v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)]
    if config.augmentation == "trivialaugment":
        return [v2.TrivialAugmentWide()]
    return []


def build_train_transform(config: TrainConfig, mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """uint8 (3, H, W) → augmented, normalized float32 (3, H, W)."""
    ops: list[nn.Module] = []
    if config.augmentation != "none":
        # --crop-padding: 4 px at 32 px by default (scaled with the image); the speed preset moves 2
        ops += [v2.RandomCrop(config.image_size, padding=config.crop_padding,
                              padding_mode="reflect" if config.crop_pad_mode == "reflect" else "constant"),
                v2.RandomHorizontalFlip()]
    ops += _policy(config)  # the policies work on uint8, before normalization
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    if config.cutout:
        ops.append(Cutout(config.cutout))
    if config.random_erasing > 0:
        ops.append(v2.RandomErasing(p=config.random_erasing, value=0))
    return v2.Compose(ops)


def build_test_transform(config: TrainConfig, mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """uint8 (3, H, W) → normalized float32 (3, H, W); no randomness."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])


# ---------------------------------------------------------------------------------------- per batch
class BatchMixer:
    """MixUp and/or CutMix on a batch: (images, int labels) → (mixed images, soft targets (N, C)).

    With both on, each batch picks CutMix with ``switch_prob`` and MixUp otherwise; a batch is mixed
    at all with ``mix_prob`` (else its targets are plain one-hot). Targets always sum to 1.
    """

    def __init__(self, num_classes: int, mixup_alpha: Optional[float] = None, cutmix_alpha: Optional[float] = None,
                 mix_prob: float = 1.0, switch_prob: float = 0.5) -> None:
        if mixup_alpha is None and cutmix_alpha is None:
            raise ValueError("BatchMixer needs mixup_alpha or cutmix_alpha")
        self.num_classes = num_classes
        self.mix_prob = mix_prob
        self.mixup = v2.MixUp(alpha=mixup_alpha, num_classes=num_classes) if mixup_alpha else None
        self.cutmix = v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes) if cutmix_alpha else None
        self.switch_prob = switch_prob if (self.mixup and self.cutmix) else (1.0 if self.cutmix else 0.0)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if torch.rand(()) >= self.mix_prob:
            return images, F.one_hot(labels, self.num_classes).to(images.dtype)
        mix = self.cutmix if torch.rand(()) < self.switch_prob else self.mixup
        return mix(images, labels)


def build_batch_mixer(config: TrainConfig, num_classes: int) -> Optional[BatchMixer]:
    if not config.mixing:
        return None
    return BatchMixer(num_classes, config.mixup, config.cutmix, config.mix_prob, config.switch_prob)
