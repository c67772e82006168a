"""The model registry: every architecture is built by name through :func:`create_model`.

A model module registers its small named constructors with ``@register_model``; the constructors
hold only data (widths, depths) and call the family's builder. Every model has the same interface:
``forward_features(x) -> features``, ``forward_head(features) -> logits`` and ``forward(x)``, and
takes ``num_classes``, ``image_size``, ``activation`` and ``drop_path_rate``, so trainers and
benchmarks never special-case an architecture.

    >>> from models import create_model, list_models
    >>> model = create_model("resnet18", num_classes=10, activation="gelu")
"""
from models.registry import (ModelEntry, check_image_size, check_model_name, count_parameters, create_model,
                             list_models, model_family, register_model)

# Importing the families fills the registry.
from models import network, resnet, efficientnet, cnn_transformer, speednet  # noqa: E402,F401

__all__ = ["ModelEntry", "check_image_size", "check_model_name", "count_parameters", "create_model", "list_models",
           "model_family", "register_model"]
