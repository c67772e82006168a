"""What a trained model looks at: ``main_modern.py --explain CHECKPOINT PNG``.

Two standard answers, one per kind of model, each a heatmap over the image:

- **Grad-CAM** (Selvaraju et al., 2017), for the convolutional models: the last convolutional stage's
  feature maps (``forward_features``: (N, C, h, w)), each weighted by the mean gradient of the class
  score with respect to it, summed over channels, negatives cut off (ReLU): the places whose features
  raise the predicted class's score. The maps are h×w (4×4 for a ResNet at 32 px), enlarged to the
  image; coarse, since the last stage sees the image in large steps.
- **Attention rollout** (Abnar & Zuidema, 2020), for ``vit_tiny`` and ``cnn_transformer_*``: each
  block's attention (softmax(QKᵀ/√d), averaged over heads), with the residual connection added as an
  identity (½A + ½I, rows renormalized), multiplied through the blocks: how much each image token
  flows into the class token that the head reads. A map of the tokens' grid (8×8 for ``vit_tiny``).

The picture: a grid of test images (a stratified sample, so every class shows), each over its
heatmap, titled "predicted / true" (green when right, red when wrong).
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.cnn_transformer import VisionTransformer
from utils.after.inference import TrainedModel, load_trained_model, test_sample
from utils.errors import UserError
from utils.visualization import picture_path, plot_explanations

MAX_EXPLAINED = 64  # images in one picture (8 per row)


def grad_cam(model: nn.Module, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Grad-CAM heatmaps (N, H, W) in [0, 1] of normalized ``images`` for ``classes`` (N,)."""
    with torch.enable_grad():
        features = model.forward_features(images)
        if features.ndim != 4:
            raise UserError(f"Grad-CAM needs convolutional feature maps; {type(model).__name__} gives "
                            f"{tuple(features.shape)}")
        score = model.forward_head(features).gather(1, classes.view(-1, 1)).sum()
        gradients, = torch.autograd.grad(score, features)
    weights = gradients.mean(dim=(2, 3), keepdim=True)  # one weight per channel: its mean gradient
    cam = F.relu((weights * features).sum(1, keepdim=True)).detach()
    return _to_image(cam, images.shape[-2:])


def attention_maps(model: VisionTransformer, images: torch.Tensor) -> list[torch.Tensor]:
    """Each block's attention weights (N, heads, T, T) on normalized ``images``.

    The blocks use ``F.scaled_dot_product_attention``, whose fused kernels never form the weights; a
    hook on each attention module takes its input and asks the module for them (``Attention.attention_weights``).
    """
    maps = []

    def record(module: nn.Module, inputs: tuple[torch.Tensor]) -> None:
        maps.append(module.attention_weights(inputs[0]))  # the block's normalized tokens (N, T, D)

    hooks = [block.attention.register_forward_pre_hook(record) for block in model.blocks]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for hook in hooks:
            hook.remove()
    return maps


def attention_rollout(model: VisionTransformer, images: torch.Tensor) -> torch.Tensor:
    """Attention-rollout heatmaps (N, H, W) in [0, 1] of normalized ``images`` (what the head reads)."""
    return rollout_of(attention_maps(model, images), model.pool, images.shape[-2:])


def rollout_of(maps: list[torch.Tensor], pool: str, size) -> torch.Tensor:
    """The rollout of the blocks' attention ``maps`` (N, heads, T, T), as (N, H, W) heatmaps of ``size``."""
    means = [attention.mean(1) for attention in maps]  # averaged over heads
    tokens = means[0].shape[-1]
    identity = torch.eye(tokens, device=means[0].device)
    rollout = identity.expand_as(means[0])
    for attention in means:
        mixed = 0.5 * attention + 0.5 * identity  # the residual path carries each token on unchanged
        rollout = (mixed / mixed.sum(-1, keepdim=True)) @ rollout
    flow = rollout[:, 0, 1:] if pool == "cls" else rollout[:, 1:, 1:].mean(1)  # the class token, or the mean
    side = math.isqrt(tokens - 1)
    return _to_image(flow.reshape(-1, 1, side, side), size)


def _to_image(maps: torch.Tensor, size) -> torch.Tensor:
    """(N, 1, h, w) maps → (N, H, W), bilinearly enlarged, each scaled to [0, 1] by its own maximum."""
    maps = F.interpolate(maps.float(), size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    return maps / maps.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)


def heatmaps(model: nn.Module, images: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, str]:
    """The model's explanation maps for ``classes`` and the method's name."""
    if isinstance(model, VisionTransformer):
        reads = "what the class token reads" if model.pool == "cls" else "what the mean of the tokens reads"
        return attention_rollout(model, images), f"attention rollout ({reads})"
    return grad_cam(model, images, classes), "Grad-CAM of the predicted class (last convolutional stage)"


def explain_checkpoint(checkpoint: str, path: str, count: int = 16, device: str = "auto", seed: int = 0) -> Path:
    """Write a grid of ``count`` test images with what the model in ``checkpoint`` looks at to ``path``."""
    if not 1 <= count <= MAX_EXPLAINED:
        raise UserError(f"--explain-count must be between 1 and {MAX_EXPLAINED} (got {count}): one picture, "
                        f"{MAX_EXPLAINED // 8} rows of 8 at most")
    picture = picture_path(path)
    trained = load_trained_model(checkpoint, device)
    images, labels = test_sample(trained, count, seed)
    if len(images) < count:
        print(f"note: the run's test set holds {len(images)} images; all of them are drawn")
    model = _fp32(trained)
    inputs = trained.normalized(images)
    with torch.no_grad():
        predicted = model(inputs).argmax(1).cpu()
    maps, method = heatmaps(model, inputs, predicted.to(trained.device))
    right = int((predicted == labels).sum())
    plot_explanations(images, maps.cpu(), predicted.tolist(), labels.tolist(), trained.class_names, picture,
                      title=f"{trained.config.model}: {method}, {right}/{len(labels)} right")
    print(f"{method} of {len(images)} test images by {trained.description} written to {picture}")
    return picture


def _fp32(trained: TrainedModel) -> nn.Module:
    """The model in fp32 and contiguous memory: gradients for Grad-CAM, exact attention for rollout."""
    return trained.model.float().to(memory_format=torch.contiguous_format).eval()
