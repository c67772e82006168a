"""A trained model, ready for new images: what predict, export and explain start from.

A checkpoint holds the weights, the run's config (model, image size, precision), its class names and
the normalization the model was trained with (mean and std per channel). Those four are everything
a new image needs to be classified exactly as the run's own test images were: decoded to RGB,
resized to the run's ``--image-size``, scaled to ``(x / 255 - mean) / std``, and run in the precision
the model was trained and evaluated in.

- :func:`load_trained_model`: a checkpoint → :class:`TrainedModel` (evaluation mode, on a device);
- :meth:`TrainedModel.probabilities`: uint8 images → class probabilities, test-time views included;
- :func:`test_sample`: a stratified sample of the run's own test images (export checks, explain grids).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from utils.config import TrainConfig
from utils.data.batch_augment import normalize
from utils.data.order import stratified_subset
from utils.data.sources import load_splits
from utils.data_loader import build_data
from utils.devices import select_device
from utils.errors import UserError
from utils.evaluation import forward_chunk, predict
from utils.experiment import build_model
from utils.modern_trainer import Precision
from utils.resolve import resolve_for_device
from utils.training.checkpoint import load_checkpoint


@dataclass
class TrainedModel:
    """A checkpoint's model in evaluation mode on ``device``, with what its inputs need."""

    model: nn.Module
    config: TrainConfig  # the run's, resolved for ``device`` (precision, channels_last)
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: torch.device
    source: str  # the checkpoint's path, for messages
    description: str  # "resnet_tiny, EMA weights of epoch 30"

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def normalized(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 RGB (N, 3, image_size, image_size) → the model's normalized float input, on its device."""
        return normalize(images.to(self.device), torch.tensor(self.mean, device=self.device),
                         torch.tensor(self.std, device=self.device))

    @torch.inference_mode()
    def probabilities(self, images: torch.Tensor, tta: str = "none", batch_size: int = 256) -> torch.Tensor:
        """Softmax probabilities (N, classes), float32 on the CPU, of uint8 RGB images, in batches.

        The run's precision (bf16 autocast where it trained in it) and memory format are used, so a
        test image gets the probabilities the run's own evaluation gave it.
        """
        precision = Precision.from_config(self.config, self.device)
        results = []
        for start in range(0, len(images), batch_size):
            batch = self.normalized(images[start:start + batch_size])
            if self.config.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            with precision.autocast():
                results.append(predict(self.model, batch, tta, forward_chunk(self.device)).float().softmax(1).cpu())
        return torch.cat(results) if results else torch.empty(0, len(self.class_names))


def load_trained_model(path: Path | str, device_name: str = "auto", checkpoint: Optional[dict] = None
                       ) -> TrainedModel:
    """The model saved in ``path`` (``best.pt`` or ``last.pt``), ready on ``device_name``'s device.

    Checkpoints written before the normalization was stored in them get it from the run's training
    data again (the folder of their config), which must then still be there.
    """
    path = Path(path)
    checkpoint = checkpoint if checkpoint is not None else load_checkpoint(path)
    if not isinstance(checkpoint.get("config"), dict) or "model" not in checkpoint:
        raise UserError(f"{path} is not a checkpoint of this project's runs (no model or config in it)")
    device = select_device(device_name)
    # resume=True: the run's precision is re-resolved only if this device is of another kind than the run's
    saved = TrainConfig.from_dict(checkpoint["config"]).replace(resume=True, device=device_name)
    config, _ = resolve_for_device(saved, device)
    class_names = list(checkpoint.get("class_names") or [])
    mean, std = normalization_of(checkpoint, config, path)
    model = build_model(config, len(class_names)).to(device)
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:
        raise UserError(f"{path} does not fit model {config.model} ({str(error).splitlines()[0][:120]})") from None
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    description = (f"{config.model}, {checkpoint.get('weights_source', 'raw')} weights of epoch "
                   f"{checkpoint.get('epoch', '?')}")
    return TrainedModel(model.eval(), config, class_names, mean, std, device, str(path), description)


def normalization_of(checkpoint: dict, config: TrainConfig, path: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (mean, std) the checkpoint's model was trained with."""
    stored = checkpoint.get("normalization")
    if stored:
        return tuple(stored["mean"]), tuple(stored["std"])
    if not checkpoint.get("class_names"):
        raise UserError(f"{path} holds no class names: it was written by an older version; retrain the model")
    try:
        data = build_data(config.replace(workers=0, data_mode="memory", subset=None, quick=False))
    except UserError as error:
        raise UserError(f"{path} predates stored normalization, and its training data is needed to recompute "
                        f"it: {error}") from None
    return tuple(data.mean), tuple(data.std)


def test_sample(trained: TrainedModel, count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` test images of the run's data (uint8, at its image size) and their labels, class-stratified.

    The test folder is listed class by class, so "the first N" would be one class; a seeded stratified
    sample holds every class in proportion.
    """
    config = trained.config.replace(subset=None, quick=False, download=False)  # never a download to check an export
    _, test, _ = load_splits(config)
    pick = stratified_subset(test.labels, min(count, len(test.labels)), seed)
    return test.images[pick], test.labels[pick]
