"""What a model costs to run (level 5): forward FLOPs per image, and inference latency.

Mobile networks (``models/efficientnet.py``) trade parameters and FLOPs for accuracy, but what a
phone or a laptop feels is latency: the time one image takes through the network. Depthwise
convolutions do few FLOPs and read a lot of memory per FLOP, so FLOPs and latency can disagree;
``--compare-models`` prints both beside the accuracy.
"""
from __future__ import annotations

import statistics
from time import perf_counter

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def forward_gflops(model: nn.Module, image_size: int) -> float:
    """Forward FLOPs of one image, in GFLOPs (a multiply-add counts 2), by torch.utils.flop_counter."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, image_size, image_size, device=device))
    model.train(was_training)
    return counter.get_total_flops() / 1e9


@torch.no_grad()
def inference_latency_ms(model: nn.Module, image_size: int, repeats: int = 30, warmup: int = 5) -> float:
    """Median milliseconds of one image's forward pass (batch 1, fp32, evaluation mode) on the model's device.

    Batch 1 is how an app classifies a photo; the median ignores the odd slow call (another process, a
    page fault). CUDA work is waited for before each clock reading.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    image = torch.zeros(1, 3, image_size, image_size, device=device)
    times = []
    for index in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = perf_counter()
        model(image)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if index >= warmup:
            times.append((perf_counter() - started) * 1000)
    model.train(was_training)
    return statistics.median(times)
