"""The network of the speed preset (``--preset speed``): a small, wide VGG-style net built to train fast.

It is the design of the CIFAR-10 speed records, written in this project's style: Page, 2018, "How
to train your ResNet" (Myrtle.ai blog series), and Jordan, 2024, "94% on CIFAR-10 in 3.29 Seconds on
a Single GPU" (airbench, arXiv 2404.00498). Each choice trades a little generality for speed:

- **A frozen whitening first layer** (:class:`PatchWhitening`): a 2×2 convolution whose filters are
  the eigenvectors of the covariance of 2×2 image patches, scaled by ``1/sqrt(eigenvalue)``, so its
  output channels are decorrelated and of unit variance (ZCA-like whitening, as a layer). It is
  computed from the training images by :meth:`SpeedNet.init_from_data` before training and never
  trained: the network starts from well-conditioned inputs, which is what lets it learn in a few
  epochs. Each filter is used with both signs (``2 × 3 × 2 × 2 = 24`` channels), so the GELU that
  follows loses no information.
- **Three conv groups** (conv → 2×2 max-pool → BatchNorm → GELU → conv → BatchNorm → GELU) of 64,
  256 and 256 channels: few layers, many channels, so a GPU is kept busy by large matrix products
  and the whole net is ~2M parameters.
- **Dirac initialization**: the first ``C_in`` filters of every 3×3 convolution start as the
  identity (``nn.init.dirac_``), an implicit residual connection without the extra memory traffic.
- **BatchNorm without a learned scale** (weight fixed at 1, bias learned): with a scale-invariant
  network the scale only interacts with weight decay; fixing it leaves one less thing to tune.
- **A max-pooled head with a fixed temperature**: global max pooling, a linear layer without bias,
  and the logits multiplied by 1/9, so the initial predictions are soft and label smoothing and the
  large learning rate of the recipe work together.

It has no residual blocks (the dirac init stands in for them), so ``drop_path_rate`` is accepted, as
every model takes it, but has nothing to act on.

Shapes at 32×32: (N, 3, 32, 32) → whitening (N, 24, 31, 31) → group 1 (N, 64, 15, 15)
→ group 2 (N, 256, 7, 7) → group 3 (N, 256, 3, 3) → global max pool (N, 256) → logits (N, num_classes).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from models.registry import register_model
from models.activations import get_activation
from models.layers import ImageClassifier


def patch_covariance(images: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Covariance (about zero) of all ``kernel_size``² patches of ``images`` (N, C, H, W): (C·k·k, C·k·k)."""
    patches = nn.functional.unfold(images.float(), kernel_size)  # (N, C·k·k, patches per image)
    # Summed in float32 by one batched product (a few 1e-6 from float64's, 2.5x faster on a CPU)
    covariance = torch.einsum("ncp,ndp->cd", patches, patches).double()
    return covariance / (patches.shape[0] * patches.shape[2])


class PatchWhitening(nn.Conv2d):
    """A ``kernel_size``² convolution (no padding) that whitens image patches; its weight is frozen.

    Shape: (N, C, H, W) → (N, 2·C·k², H - k + 1, W - k + 1). Before :meth:`fit` its filters are
    random (the model still runs, e.g. to check shapes); after it, the first ``C·k²`` output
    channels of the patches it was fitted on have (near) identity covariance, the rest are their
    negatives. The bias stays trainable.
    """

    def __init__(self, in_channels: int = 3, kernel_size: int = 2, eps: float = 5e-4) -> None:
        super().__init__(in_channels, 2 * in_channels * kernel_size ** 2, kernel_size, padding=0, bias=True)
        self.eps = eps  # keeps the near-zero eigenvalues (flat patches) from being blown up into noise
        self.weight.requires_grad_(False)
        nn.init.zeros_(self.bias)

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> None:
        """Set the filters from normalized float images (N, C, H, W) (a few thousand are plenty)."""
        eigenvalues, eigenvectors = torch.linalg.eigh(patch_covariance(images, self.kernel_size[0]))
        filters = (eigenvectors / torch.sqrt(eigenvalues + self.eps)).T  # row i: eigenvector i, scaled
        filters = filters.reshape(-1, *self.weight.shape[1:]).to(self.weight)
        self.weight.copy_(torch.cat([filters, -filters]))


class FixedScaleBatchNorm(nn.BatchNorm2d):
    """BatchNorm whose scale stays 1 (only the bias is learned); airbench's momentum and tiny eps."""

    def __init__(self, channels: int, momentum: float = 0.4, eps: float = 1e-12) -> None:
        super().__init__(channels, eps=eps, momentum=momentum)
        self.weight.requires_grad_(False)


def dirac_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """3×3 'same' convolution without bias whose first ``in_channels`` filters start as the identity."""
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:min(in_channels, out_channels)])
    return conv


class ConvGroup(nn.Sequential):
    """conv → max-pool 2×2 → BN → act → conv → BN → act. Shape: (N, C_in, H, W) → (N, C_out, H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int, activation: str) -> None:
        super().__init__(
            dirac_conv(in_channels, out_channels), nn.MaxPool2d(2), FixedScaleBatchNorm(out_channels),
            get_activation(activation),
            dirac_conv(out_channels, out_channels), FixedScaleBatchNorm(out_channels), get_activation(activation),
        )


class SpeedNet(ImageClassifier):
    def __init__(self, *, num_classes: int = 10, image_size: int = 32, activation: str = "gelu",
                 widths: Sequence[int] = (64, 256, 256), whitening_size: int = 2, temperature: float = 1 / 9,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__()
        assert image_size - whitening_size + 1 >= 2 ** len(widths), "image_size too small for the poolings"
        self.whiten = PatchWhitening(3, whitening_size)
        groups, in_channels = [], self.whiten.out_channels
        for width in widths:
            groups.append(ConvGroup(in_channels, width, activation))
            in_channels = width
        self.stem_activation = get_activation(activation)
        self.groups = nn.Sequential(*groups)
        self.num_features = in_channels
        self.fc = nn.Linear(in_channels, num_classes, bias=False)
        self.temperature = temperature  # a constant, not a parameter: it sets the initial softness of the logits

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor) -> None:
        """Fit the whitening layer to normalized training images (N, 3, H, W); the experiment calls this once."""
        self.whiten.fit(images.to(self.whiten.weight.device))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.groups(self.stem_activation(self.whiten(x)))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features.amax(dim=(2, 3))) * self.temperature


@register_model("speed")
def speednet(**kwargs) -> SpeedNet:
    """The speed preset's network: whitening, groups of 64-256-256 channels (~2.0M parameters)."""
    return SpeedNet(**kwargs)
