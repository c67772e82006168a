"""The basic CNN of learning level 1: the network the project started from.

Four stages of two 3×3 convolutions (conv → BatchNorm → activation); the first three are closed by
2×2 max-pooling and dropout. Then global average pooling and a small fully connected classifier.
About 1.2M parameters for 10 classes. Channels double as the resolution halves, so every stage
costs about the same compute; most parameters sit in the last, 4×4 stage, where they are cheap. It has no residual connections, so ``drop_path_rate`` is
accepted (every model takes it) but has nothing to act on.

BatchNorm: Ioffe & Szegedy, 2015, "Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift".

Shapes at 32×32: (N, 3, 32, 32) → stage 1 (N, 32, 16, 16) → stage 2 (N, 64, 8, 8)
→ stage 3 (N, 128, 4, 4) → stage 4 (N, 256, 4, 4) → logits (N, num_classes).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from models.registry import register_model
from models.activations import get_activation
from models.layers import ConvNormAct, ImageClassifier


class BasicCNN(ImageClassifier):
    def __init__(self, *, num_classes: int = 10, image_size: int = 32, activation: str = "relu",
                 widths: Sequence[int] = (32, 64, 128, 256), hidden: int = 128,
                 conv_dropout: float = 0.05, head_dropout: float = 0.3, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        assert image_size >= 2 ** (len(widths) - 1), "image_size too small for the poolings"
        stages, in_channels = [], 3
        for index, width in enumerate(widths):
            layers = [ConvNormAct(in_channels, width, activation=activation),
                      ConvNormAct(width, width, activation=activation)]
            if index < len(widths) - 1:  # the last stage keeps its 4×4 maps for global pooling
                layers += [nn.MaxPool2d(2), nn.Dropout2d(conv_dropout)]
            stages.append(nn.Sequential(*layers))
            in_channels = width
        self.features = nn.Sequential(*stages)
        self.num_features = in_channels
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(in_channels, hidden), get_activation(activation), nn.Dropout(head_dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)


@register_model("cnn")
def cnn(**kwargs) -> BasicCNN:
    """The basic CNN, widths 32-64-128-256 (~1.2M parameters)."""
    return BasicCNN(**kwargs)
