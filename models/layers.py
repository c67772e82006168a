"""Small building blocks shared by the convolutional families."""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from models.activations import get_activation


class ImageClassifier(nn.Module):
    """The interface every model shares: ``forward_features`` (image → features), ``forward_head``
    (features → logits), and ``forward`` = head after features. Subclasses implement the first two."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class ConvNormAct(nn.Sequential):
    """Conv2d (no bias: the norm has one) → BatchNorm2d → activation. Shape: (N, C_in, H, W) → (N, C_out, H/stride, W/stride)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, activation: Optional[str] = "relu",
                 norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2,
                      groups=groups, bias=False),
            norm_layer(out_channels),
            get_activation(activation) if activation else nn.Identity(),
        )


class ClassifierHead(nn.Module):
    """Global average pooling → dropout → linear. Shape: (N, C, H, W) → (N, num_classes).

    Average pooling (Lin et al., 2013, "Network in Network") makes the head independent of the
    input size, which is why every model here accepts any ``--image-size``.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x):
        return self.fc(self.dropout(self.pool(x).flatten(1)))
