"""The registry behind :func:`models.create_model`: named constructors, grouped in families.

A model module registers its constructors with ``@register_model``; ``models/__init__.py``
imports every family (which fills the registry) and offers these functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict

import torch
from torch import nn

from utils.errors import UserError, close_names


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    builder: Callable[..., nn.Module]
    options: tuple[str, ...]  # options beyond the common ones that this model accepts


_REGISTRY: Dict[str, ModelEntry] = {}


def register_model(family: str, options: tuple[str, ...] = ()
                   ) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a constructor under its function name, in a family (``resnet``...).

    ``options`` names the keyword arguments beyond the common ones (e.g. ``dropblock_prob``) that
    the model accepts; :func:`create_model` passes those and drops the rest.
    """

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"model '{name}' is registered twice")
        _REGISTRY[name] = ModelEntry(name, family, builder, tuple(options))
        return builder

    return decorator


def list_models(family: str | None = None) -> list[str]:
    """Registered model names, in registration order (small to large within a family)."""
    return [e.name for e in _REGISTRY.values() if family is None or e.family == family]


def model_family(name: str) -> str:
    return _REGISTRY[check_model_name(name)].family


def check_model_name(name: str) -> str:
    if name not in _REGISTRY:
        raise UserError(f"unknown model '{name}': {close_names(name, _REGISTRY)} "
                        f"(python main_modern.py --list-models shows all)")
    return name


def create_model(name: str, *, num_classes: int = 10, image_size: int = 32, activation: str | None = None,
                 drop_path_rate: float = 0.0, **options: Any) -> nn.Module:
    """Build a registered model.

    Options some families accept (``dropblock_prob``, ``dropblock_size``...) are passed only to
    builders that take them, so a caller can hand the same options to every model.
    """
    entry = _REGISTRY[check_model_name(name)]
    options = {k: v for k, v in options.items() if k in entry.options and v is not None}
    if activation is not None:  # None: the family's own default activation
        options["activation"] = activation
    return entry.builder(num_classes=num_classes, image_size=image_size, drop_path_rate=drop_path_rate, **options)


def check_image_size(name: str, image_size: int, input_size: int | None = None) -> None:
    """Refuse an ``image_size`` that model ``name`` cannot take, before anything trains.

    ``input_size``: the model is built for ``image_size`` but also fed images of this side (progressive
    resizing's early epochs, ``--low-res-size``). The model is built and run on PyTorch's ``meta``
    device (shapes only, no memory, milliseconds), so every constraint of every architecture (patch
    sizes, strides, position embeddings) is checked by the model itself.
    """
    side = input_size or image_size
    try:
        with torch.device("meta"):
            create_model(name, image_size=image_size).eval()(torch.empty(1, 3, side, side))
    except (AssertionError, RuntimeError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else error.__class__.__name__
        if input_size is not None:
            raise UserError(f"model {name} (built for {image_size} px) cannot take --low-res-size {input_size} "
                            f"({reason}); choose another size, or a model without a fixed input size") from None
        raise UserError(f"model {name} cannot take --image-size {image_size} ({reason}); "
                        f"choose another --image-size (32 works for every model)") from None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
