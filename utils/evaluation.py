"""Evaluation: accuracy and loss of a model on a split, its test-time views, and a saved model's predictions.

- :func:`evaluate`: mean cross-entropy and accuracy over a loader (summed over torchrun processes);
- :func:`evaluate_saved`: the weights of a checkpoint, evaluated with their predictions kept: what a
  run's confusion matrix, ``--evaluate`` and a study's calibration all call;
- test-time augmentation (TTA, ``--tta``), below.

Test-time augmentation: average a model's logits over a few views of each batch.

A network trained with flips and small translations has learned to answer alike for those views;
averaging its logits over them removes part of the noise of any single view (Krizhevsky et al.,
2012, averaged 10 crops; airbench, Jordan 2024, uses flip and 2-pixel translations on CIFAR-10).
All views of a batch are made with tensor operations on the device (no per-image Python):

- ``none``: the images as they are;
- ``flip``: the images and their mirror images (2 views);
- ``flip-translate``: those two, each also shifted by 2 pixels down-right and up-left with zero
  padding, which is the data set's mean after normalization (6 views);
- ``weighted``: the speed records' views and weights (airbench94): the image and its mirror 1/4 each,
  and the image shifted by 1 pixel down-right and up-left (reflect padding), each of those and its
  mirror 1/8 (6 views). The untouched views, the ones closest to the training images, count most.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import nn

from utils.config import TTA_MODES
from utils.data.batch_augment import crop_with_padding
from utils.distributed import all_reduce_sum, gather_to_all, share_state_from_main
from utils.errors import UserError
from utils.training.stopping import StopRequested

SHIFT = 2  # pixels of the translated views, at any image size (CIFAR's training crops move up to 4)


def tta_views(images: torch.Tensor, mode: str) -> list[torch.Tensor]:
    """The views of a normalized batch (N, C, H, W) that ``mode`` averages over."""
    if mode not in TTA_MODES:
        raise ValueError(f"unknown TTA mode {mode!r}; choose from {', '.join(TTA_MODES)}")
    if mode == "weighted":
        n = images.shape[0]
        shifted = [crop_with_padding(images, 1, torch.full((n, 2), top_left, dtype=torch.long, device=images.device),
                                     "reflect") for top_left in (0, 2)]
        return [images, images.flip(-1), shifted[0], shifted[0].flip(-1), shifted[1], shifted[1].flip(-1)]
    views = [images]
    if mode in ("flip", "flip-translate"):
        views.append(images.flip(-1))
    if mode == "flip-translate":
        n = images.shape[0]
        for top_left in (0, 2 * SHIFT):  # offset 0 of the padded image = shifted by +SHIFT; 2*SHIFT = by -SHIFT
            offsets = torch.full((n, 2), top_left, dtype=torch.long, device=images.device)
            views += [crop_with_padding(view, SHIFT, offsets) for view in views[:2]]
    return views


def view_weights(mode: str, count: int) -> list[float]:
    """How much each of ``count`` views of ``mode`` counts in the average (they sum to 1)."""
    if mode == "weighted":
        return [1 / 4, 1 / 4, 1 / 8, 1 / 8, 1 / 8, 1 / 8]
    return [1 / count] * count


# On a CPU a forward pass is fastest in pieces whose activations stay in the caches: passes of 128
# images evaluate about twice as fast as one pass of every view of a large batch (the figures:
# benchmarks/results/cpu-eval-chunks-2026-12-02.md). A GPU wants the opposite: one large batch, few launches.
CPU_CHUNK = 128


def forward_chunk(device: torch.device) -> Optional[int]:
    """The most images one forward pass of an evaluation takes on ``device``; None: all at once."""
    return CPU_CHUNK if device.type == "cpu" else None


def predict(model: nn.Module, images: torch.Tensor, mode: str = "none", chunk: Optional[int] = None) -> torch.Tensor:
    """Logits (N, classes) of ``model`` averaged over the views of ``mode`` (float32).

    All views go through the model together, ``chunk`` images per forward pass at most (None: in one
    pass). In evaluation mode an image's logits do not depend on the others in its batch, so the
    chunks change the speed, not the result.
    """
    views = tta_views(images, mode)
    stacked = views[0] if len(views) == 1 else torch.cat(views)
    pieces = [stacked] if chunk is None or len(stacked) <= chunk else stacked.split(chunk)
    logits = torch.cat([model(piece).float() for piece in pieces])
    if len(views) == 1:
        return logits
    # Memory grows with the views: lower --eval-batch-size if a large model or image size runs out of it.
    logits = logits.view(len(views), images.shape[0], -1)
    weights = torch.tensor(view_weights(mode, len(views)), device=logits.device)
    return torch.einsum("v,vnc->nc", weights, logits)


@torch.inference_mode()
def evaluate(model: nn.Module, loader, device: torch.device, precision: Optional[Any] = None,
             channels_last: bool = False, keep_predictions: bool = False,
             should_stop: Callable[[], bool] = lambda: False, tta: str = "none") -> dict[str, Any]:
    """Mean cross-entropy (no smoothing) and accuracy in percent over ``loader``.

    ``precision``: the training's (``utils/modern_trainer.Precision``), else fp32. ``tta`` averages the
    logits over flipped/translated views. ``keep_predictions`` adds the predicted classes, labels and
    softmax probabilities (returned on the CPU, moved there once). ``should_stop`` is asked after every batch; when it says yes,
    :class:`StopRequested` is raised, so a Ctrl-C during a long evaluation is honoured at once.
    """
    was_training = model.training
    model.eval()
    loss_sum, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
    predictions, labels_seen, probabilities = [], [], []
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with precision.autocast() if precision else torch.autocast(device.type, enabled=False):
            logits = predict(model, images, tta, forward_chunk(device))  # averaged over the views of ``--tta``
        loss_sum += nn.functional.cross_entropy(logits.float(), labels, reduction="sum")
        predicted = logits.argmax(1)
        correct += (predicted == labels).sum()
        seen += len(labels)
        if keep_predictions:  # kept on the device: one transfer at the end, not three per batch
            predictions.append(predicted)
            labels_seen.append(labels)
            probabilities.append(logits.float().softmax(1))
        if should_stop():
            model.train(was_training)
            raise StopRequested
    model.train(was_training)
    # Under torchrun each process evaluated its share of the images: add the sums over processes.
    totals = all_reduce_sum(torch.stack([loss_sum.float(), correct.float(), torch.tensor(float(seen), device=device)]))
    loss_total, correct_total, seen_total = totals.tolist()
    result = {"loss": loss_total / max(1, seen_total), "acc": 100.0 * correct_total / max(1, seen_total)}
    if keep_predictions:  # (a torchrun process may have had no images: it still joins the gathers)
        result["predictions"] = gather_to_all(torch.cat(predictions).cpu() if predictions
                                              else torch.empty(0, dtype=torch.long))
        result["labels"] = gather_to_all(torch.cat(labels_seen).cpu() if labels_seen else torch.empty(0, dtype=torch.long))
        result["probabilities"] = gather_to_all(torch.cat(probabilities).cpu() if probabilities else torch.empty(0, 0))
    return result


def evaluate_saved(checkpoint: Optional[dict[str, Any]], model: nn.Module, loader, device: torch.device,
                   source: str = "the checkpoint", **options: Any) -> dict[str, Any]:
    """Load a checkpoint's weights into ``model`` and evaluate them, predictions kept (:func:`evaluate`'s options).

    Under torchrun rank 0 reads the file and passes its checkpoint (the others pass None): its weights
    are handed to every process, whose machines may not see the file.
    """
    load_saved(checkpoint, model, source)
    return evaluate(model, loader, device, keep_predictions=True, **options)


def load_saved(checkpoint: Optional[dict[str, Any]], model: nn.Module, source: str = "the checkpoint") -> None:
    """Load a checkpoint's weights into ``model`` (under torchrun, rank 0's checkpoint into every process's)."""
    saved = checkpoint["model"] if checkpoint is not None else None
    try:
        model.load_state_dict(share_state_from_main(saved, model.state_dict()))
    except RuntimeError as error:
        raise UserError(f"{source} does not fit this model ({str(error).splitlines()[0][:120]})") from None
