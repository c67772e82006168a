"""Checks that need a CUDA GPU (``python -m pytest -m cuda``); skipped on machines without one."""
from __future__ import annotations

import pytest
import torch

from utils.config import TrainConfig
from utils.data_loader import build_data
from utils.experiment import build_model
from utils.modern_trainer import resolve_amp
from utils.trainer import Trainer

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("amp_dtype", ["bf16", "fp16"])
def test_the_training_step_makes_no_host_device_sync(tmp_path, amp_dtype):
    """torch.cuda.set_sync_debug_mode("error") turns any synchronizing call in the step into an error."""
    device = torch.device("cuda")
    config = resolve_amp(TrainConfig(model="resnet_tiny", recipe="modern", amp=True, amp_dtype=amp_dtype,
                                     dataset="synthetic", synthetic_size=512, batch_size=64, progress=False,
                                     device="cuda", dropblock=0.1, output_dir=str(tmp_path)).resolved(), device)
    data = build_data(config, device)
    model = build_model(config, data.num_classes).to(device, memory_format=torch.channels_last)
    trainer = Trainer(model, data, config, tmp_path, device)
    data.set_epoch(0)
    batches = [(images.contiguous(memory_format=torch.channels_last), labels) for images, labels in data.train_loader]
    for images, labels in batches[:2]:  # warm-up: optimizer state, cuDNN plans
        trainer.train_step(images, labels)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for images, labels in batches[2:6]:
            trainer.train_step(images, labels)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
