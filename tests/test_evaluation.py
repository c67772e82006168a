"""Test-time augmentation: the views are the flips and 2-pixel shifts, and the logits are their mean."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.transforms import v2

import main_modern
from models import create_model
from utils.evaluation import forward_chunk, predict, tta_views

from tests.conftest import SYNTHETIC, run_main


def test_the_views_of_each_mode():
    images = torch.randn(2, 3, 8, 8)
    assert len(tta_views(images, "none")) == 1
    plain, flipped = tta_views(images, "flip")
    assert torch.equal(flipped, v2.functional.horizontal_flip(images))
    views = tta_views(images, "flip-translate")
    assert len(views) == 6
    # down-right by 2 (zero padded), per image, as torchvision would crop the padded image
    expected = v2.functional.crop(v2.functional.pad(images, [2]), 0, 0, 8, 8)
    assert torch.equal(views[2], expected)
    assert torch.equal(views[4], v2.functional.crop(v2.functional.pad(images, [2]), 4, 4, 8, 8))  # up-left
    with pytest.raises(ValueError):
        tta_views(images, "rotate")


def test_predict_averages_the_logits_of_the_views():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(5)).eval()
    images = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        model(images)  # materialize the lazy layer
        by_hand = torch.stack([model(view) for view in tta_views(images, "flip-translate")]).mean(0)
        torch.testing.assert_close(predict(model, images, "flip-translate"), by_hand)
        torch.testing.assert_close(predict(model, images, "none"), model(images))


@pytest.mark.parametrize("mode", ["none", "weighted"])
def test_forward_chunks_change_the_speed_not_the_logits(mode):
    """In eval mode an image's logits do not depend on its batch: chunked passes equal one pass."""
    torch.manual_seed(0)
    model = create_model("speednet").eval()  # BatchNorm with running statistics: per-image in eval mode
    images = torch.randn(10, 3, 32, 32)
    batches = []
    model.register_forward_hook(lambda module, inputs, output: batches.append(len(inputs[0])))
    views = len(tta_views(images, mode))
    with torch.no_grad():
        whole = predict(model, images, mode)
        assert batches == [10 * views]
        for chunk in (1, 4, 7, 60):  # smaller than one view, not a divisor, larger than all views
            batches.clear()
            torch.testing.assert_close(predict(model, images, mode, chunk), whole, rtol=1e-4, atol=1e-5)
            assert max(batches) <= chunk and sum(batches) == 10 * views
    assert forward_chunk(torch.device("cpu")) == 128 and forward_chunk(torch.device("cuda")) is None


def test_tta_reaches_training_and_evaluate(tmp_path, capfd):
    out = tmp_path / "run"
    code, _, err = run_main(main_modern.main, [*SYNTHETIC, "--epochs", "1", "--tta", "flip", "--output-dir", str(out)],
                            capfd)
    assert code == 0, err
    code, stdout, err = run_main(main_modern.main, ["--evaluate", str(out / "best.pt"), *SYNTHETIC,
                                                    "--tta", "flip-translate"], capfd)
    assert code == 0 and "TTA flip-translate" in stdout, err
