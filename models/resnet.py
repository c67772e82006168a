"""ResNet for CIFAR (He et al., 2016, "Deep Residual Learning for Image Recognition").

Variants: ``resnet_tiny`` (half width, ~2M), ``resnet18`` (~11M), ``resnet34`` (~21M),
``resnet50`` (bottleneck blocks, ~23M), parameters for 10 classes.

The CIFAR stem. ImageNet ResNets open with a 7×7 stride-2 convolution and a stride-2 max-pool,
shrinking a 224×224 image 4× before the first residual block. On a 32×32 image the same stem leaves
8×8 maps after two layers, throws away most of the spatial detail of an image that has little to
begin with, and costs several points of accuracy. The CIFAR stem used here (as in the paper's CIFAR
experiments and most CIFAR code since) is one 3×3 convolution with stride 1 and no max-pool, so
stage 1 works at full resolution: (N, 3, 32, 32) → (N, 64, 32, 32) → ... → (N, 512·e, 4, 4).

Blocks take the activation, stochastic depth (``drop_path_rate``, linear over depth) and, in stages 3
and 4, DropBlock (``dropblock_prob``), as Ghiasi et al. (2018) apply it. ``zero_init_residual`` sets
the last BatchNorm of each block to zero so that every block starts as the identity (Goyal et al.,
2017, "Accurate, Large Minibatch SGD"). It is off by default: it suits SGD, but Adam moves each
parameter by about ``lr`` per step whatever its gradient, so zeroed scales grow ~1e-3 per step and
the residual branches stay nearly silent for the hundreds of steps a short run has (the measurement:
benchmarks/results/cpu-2026-11-24.md, "zero-init").
"""
from __future__ import annotations

from typing import Sequence, Type

import torch
from torch import nn

from models.registry import register_model
from models.activations import get_activation
from models.layers import ClassifierHead, ConvNormAct, ImageClassifier
from utils.regularization import DROPBLOCK_OPTIONS, drop_path, drop_path_rates, dropblock


class BasicBlock(nn.Module):
    """Two 3×3 convolutions and a shortcut: ``act(x + F(x))``. (N, C_in, H, W) → (N, C, H/s, W/s)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int, activation: str, drop_path_rate: float) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            ConvNormAct(in_channels, channels, 3, stride, activation=activation),
            ConvNormAct(channels, channels, 3, 1, activation=None),
        )
        self.shortcut = _shortcut(in_channels, channels * self.expansion, stride)
        self.drop_path = drop_path(drop_path_rate)
        self.activation = get_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.shortcut(x) + self.drop_path(self.residual(x)))


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 → 1×1 expand (×4), for the deeper ResNets. (N, C_in, H, W) → (N, 4C, H/s, W/s)."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int, activation: str, drop_path_rate: float) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            ConvNormAct(in_channels, channels, 1, 1, activation=activation),
            ConvNormAct(channels, channels, 3, stride, activation=activation),
            ConvNormAct(channels, channels * self.expansion, 1, 1, activation=None),
        )
        self.shortcut = _shortcut(in_channels, channels * self.expansion, stride)
        self.drop_path = drop_path(drop_path_rate)
        self.activation = get_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.shortcut(x) + self.drop_path(self.residual(x)))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity when shapes match, else a strided 1×1 projection (option B of the paper)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return ConvNormAct(in_channels, out_channels, 1, stride, activation=None)


class ResNet(ImageClassifier):
    def __init__(self, block: Type[nn.Module], layers: Sequence[int], widths: Sequence[int] = (64, 128, 256, 512), *,
                 num_classes: int = 10, image_size: int = 32, activation: str = "relu",
                 drop_path_rate: float = 0.0, dropblock_prob: float = 0.0, dropblock_size: int = 3,
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        self.stem = ConvNormAct(3, widths[0], 3, 1, activation=activation)  # the CIFAR stem: no stride, no pool
        rates = iter(drop_path_rates(sum(layers), drop_path_rate))
        stages, in_channels = [], widths[0]
        for index, (depth, width) in enumerate(zip(layers, widths)):
            blocks = []
            for b in range(depth):
                stride = 2 if (index > 0 and b == 0) else 1
                blocks.append(block(in_channels, width, stride, activation, next(rates)))
                in_channels = width * block.expansion
                if index >= 2:  # DropBlock in the later stages, where features are spatially correlated
                    blocks.append(dropblock(dropblock_prob, dropblock_size))
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.num_features = in_channels
        self.head = ClassifierHead(in_channels, num_classes)
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(m.residual[-1][1].weight)  # the BatchNorm of the last ConvNormAct

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)


@register_model("resnet", options=DROPBLOCK_OPTIONS)
def resnet_tiny(**kwargs) -> ResNet:
    """Half-width ResNet-18 with one block in the last stage (~2M parameters): fast on a CPU."""
    return ResNet(BasicBlock, [2, 2, 2, 1], widths=(32, 64, 128, 256), **kwargs)


@register_model("resnet", options=DROPBLOCK_OPTIONS)
def resnet18(**kwargs) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


@register_model("resnet", options=DROPBLOCK_OPTIONS)
def resnet34(**kwargs) -> ResNet:
    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


@register_model("resnet", options=DROPBLOCK_OPTIONS)
def resnet50(**kwargs) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)
