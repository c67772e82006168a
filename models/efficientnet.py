"""EfficientNet for CIFAR (Tan & Le, 2019, "EfficientNet: Rethinking Model Scaling for CNNs").

Variants: ``efficientnet_tiny`` (width 0.5, ~1M), ``efficientnet_b0`` (~4M) and
``efficientnet_b1`` (depth ×1.1, ~6.5M), parameters for 10 classes.

The building block is MBConv (Sandler et al., 2018, "MobileNetV2"): a 1×1 convolution expands the
channels, a depthwise k×k convolution mixes space cheaply, squeeze-and-excitation (Hu et al., 2018)
re-weights the channels, a 1×1 convolution projects back, and a residual connection (with
stochastic depth) joins input and output when their shapes match.

Compound scaling: B1 keeps B0's widths and multiplies every stage's depth by 1.1 (rounded up), as in
the paper (its resolution factor does not apply to 32×32 data). ``tiny`` halves B0's width.

Strides for 32×32 input: the ImageNet network divides a 224×224 image by 32. Here the stem has
stride 1 and only three stages have stride 2, so a 32×32 image ends as 4×4 maps, as in ResNet:
(N, 3, 32, 32) → stem (N, 32w, 32, 32) → 7 stages → (N, 1280w, 4, 4) → (N, num_classes).
The default activation is swish (SiLU), the paper's choice.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from models.registry import register_model
from models.activations import get_activation
from models.layers import ClassifierHead, ConvNormAct, ImageClassifier
from utils.regularization import DROPBLOCK_OPTIONS, drop_path, drop_path_rates, dropblock


class StageSpec(NamedTuple):
    expand_ratio: int
    kernel_size: int
    stride: int
    channels: int
    depth: int


# B0's stages, with strides adapted to 32×32 (ImageNet: 1, 2, 2, 2, 1, 2, 1 after a stride-2 stem).
B0_STAGES = (
    StageSpec(1, 3, 1, 16, 1),
    StageSpec(6, 3, 1, 24, 2),
    StageSpec(6, 5, 2, 40, 2),
    StageSpec(6, 3, 2, 80, 3),
    StageSpec(6, 5, 1, 112, 3),
    StageSpec(6, 5, 2, 192, 4),
    StageSpec(6, 3, 1, 320, 1),
)


def round_channels(channels: float, divisor: int = 8) -> int:
    """Round to a multiple of 8 (hardware-friendly), never more than 10% below the request."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


class SqueezeExcite(nn.Module):
    """Channel attention: global pool → reduce → activation → expand → sigmoid gate. Shape kept.

    The reduce and expand layers are 1×1 convolutions by their weights (the usual layout, so checkpoints
    load anywhere), applied to the pooled (N, C) vector as matrix products: a 1×1 convolution of an
    N×C×1×1 tensor is the same product, at the cost of a convolution's dispatch and memory-format checks.
    """

    def __init__(self, channels: int, reduced: int, activation: str) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.activation = get_activation(activation)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean((2, 3))
        hidden = self.activation(F.linear(pooled, self.reduce.weight.flatten(1), self.reduce.bias))
        gate = torch.sigmoid(F.linear(hidden, self.expand.weight.flatten(1), self.expand.bias))  # a gate, not an activation
        return x * gate[:, :, None, None]


class MBConv(nn.Module):
    """Inverted residual block with SE. (N, C_in, H, W) → (N, C_out, H/stride, W/stride)."""

    def __init__(self, in_channels: int, out_channels: int, expand_ratio: int, kernel_size: int, stride: int,
                 activation: str, drop_path_rate: float, se_ratio: float = 0.25) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        layers = []
        if expand_ratio != 1:
            layers.append(ConvNormAct(in_channels, hidden, 1, activation=activation))
        layers += [
            ConvNormAct(hidden, hidden, kernel_size, stride, groups=hidden, activation=activation),  # depthwise
            SqueezeExcite(hidden, max(1, int(in_channels * se_ratio)), activation),
            ConvNormAct(hidden, out_channels, 1, activation=None),  # linear projection: no activation
        ]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.drop_path = drop_path(drop_path_rate) if self.use_residual else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + self.drop_path(out) if self.use_residual else out


class EfficientNet(ImageClassifier):
    def __init__(self, width_mult: float = 1.0, depth_mult: float = 1.0, *, num_classes: int = 10,
                 image_size: int = 32, activation: str = "swish", drop_path_rate: float = 0.0,
                 dropout: float = 0.2, dropblock_prob: float = 0.0, dropblock_size: int = 3) -> None:
        super().__init__()
        stages = [s._replace(channels=round_channels(s.channels * width_mult),
                             depth=math.ceil(s.depth * depth_mult)) for s in B0_STAGES]
        stem_channels = round_channels(32 * width_mult)
        self.stem = ConvNormAct(3, stem_channels, 3, 1, activation=activation)
        rates = iter(drop_path_rates(sum(s.depth for s in stages), drop_path_rate))
        blocks, in_channels = [], stem_channels
        for index, spec in enumerate(stages):
            for b in range(spec.depth):
                blocks.append(MBConv(in_channels, spec.channels, spec.expand_ratio, spec.kernel_size,
                                     spec.stride if b == 0 else 1, activation, next(rates)))
                in_channels = spec.channels
            if index >= len(stages) - 3:  # DropBlock after the last three stages (4×4 to 8×8 maps)
                blocks.append(dropblock(dropblock_prob, dropblock_size))
        self.blocks = nn.Sequential(*blocks)
        self.num_features = round_channels(1280 * width_mult)
        self.conv_head = ConvNormAct(in_channels, self.num_features, 1, activation=activation)
        self.head = ClassifierHead(self.num_features, num_classes, dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_head(self.blocks(self.stem(x)))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)


@register_model("efficientnet", options=DROPBLOCK_OPTIONS)
def efficientnet_tiny(**kwargs) -> EfficientNet:
    return EfficientNet(width_mult=0.5, depth_mult=1.0, **kwargs)


@register_model("efficientnet", options=DROPBLOCK_OPTIONS)
def efficientnet_b0(**kwargs) -> EfficientNet:
    return EfficientNet(width_mult=1.0, depth_mult=1.0, **kwargs)


@register_model("efficientnet", options=DROPBLOCK_OPTIONS)
def efficientnet_b1(**kwargs) -> EfficientNet:
    return EfficientNet(width_mult=1.0, depth_mult=1.1, **kwargs)
