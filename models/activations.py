"""Activation functions, by name (learning level 1).

Every model takes an ``activation`` name and builds its non-linearities through
:func:`get_activation`, so swapping ReLU for GELU changes the whole network at once.

Swish (Ramachandran et al., 2017, "Searching for Activation Functions", also called SiLU) and Mish
(Misra, 2019, "Mish: A Self Regularized Non-Monotonic Activation Function") are written out here by
hand for the lesson; the tests check them against ``nn.SiLU`` and ``nn.Mish``, which the registry
uses because they are faster and fused.
"""
from __future__ import annotations

from typing import Callable, Dict

import torch
import torch.nn.functional as F
from torch import nn

from utils.errors import UserError, close_names


class Swish(nn.Module):
    """Swish / SiLU written out: ``x * sigmoid(x)``. Smooth, non-monotonic just below zero."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class Mish(nn.Module):
    """Mish written out: ``x * tanh(softplus(x))``, where ``softplus(x) = log(1 + exp(x))``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.tanh(F.softplus(x))


# name -> (constructor, one-line description). Constructors take no arguments so that a block can
# call ``get_activation(name)`` as often as it needs fresh modules.
ACTIVATIONS: Dict[str, tuple[Callable[[], nn.Module], str]] = {
    "relu": (lambda: nn.ReLU(inplace=True), "max(0, x): the default since AlexNet"),
    "leaky_relu": (lambda: nn.LeakyReLU(0.1, inplace=True), "small slope (0.1) for x < 0, no dead units"),
    "elu": (lambda: nn.ELU(inplace=True), "exponential for x < 0, mean activations nearer zero"),
    "selu": (lambda: nn.SELU(inplace=True), "scaled ELU, self-normalizing (Klambauer et al., 2017)"),
    "gelu": (nn.GELU, "x * Phi(x), used by transformers (Hendrycks & Gimpel, 2016)"),
    "swish": (nn.SiLU, "x * sigmoid(x), EfficientNet's choice (Ramachandran et al., 2017)"),
    "silu": (nn.SiLU, "another name for swish"),
    "mish": (nn.Mish, "x * tanh(softplus(x)) (Misra, 2019)"),
    "hardswish": (nn.Hardswish, "piecewise-linear swish, cheap on mobile (MobileNetV3)"),
    "tanh": (nn.Tanh, "the classic squashing function, saturates"),
    "sigmoid": (nn.Sigmoid, "the classic squashing function, saturates: a lesson in vanishing gradients"),
}


# Names that build the same function as another name in the table: a comparison of activations would
# train that function twice and report two arms that can only tie.
ALIASES = {"silu": "swish"}


def list_activations(distinct: bool = False) -> list[str]:
    """All activation names, sorted; ``distinct`` leaves out the aliases (one name per function)."""
    return sorted(name for name in ACTIVATIONS if not (distinct and name in ALIASES))


def describe_activation(name: str) -> str:
    return ACTIVATIONS[name][1]


def check_activation(name: str) -> str:
    """Return ``name`` if it is known, else raise :class:`UserError` with the close names."""
    if name not in ACTIVATIONS:
        raise UserError(f"unknown activation '{name}': {close_names(name, ACTIVATIONS)}")
    return name


def get_activation(name: str) -> nn.Module:
    """A fresh activation module for ``name`` (e.g. ``"gelu"``)."""
    return ACTIVATIONS[check_activation(name)][0]()
