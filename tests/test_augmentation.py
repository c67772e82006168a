"""Augmentation and regularization ops: shapes, ranges, identities and statistics that can fail."""
import pytest
import torch
from torchvision.ops import DropBlock2d, StochasticDepth

from models import create_model
from utils.augmentation import BatchMixer, Cutout, build_test_transform, build_train_transform, cutout
from utils.config import AUGMENTATIONS, TrainConfig
from utils.regularization import ScheduledDropBlock, dropblock_layers, dropblock_prob_at, set_dropblock_prob
from utils.resolve import resolve

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _image(seed: int = 0, size: int = 32) -> torch.Tensor:
    return (torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed)) * 255).to(torch.uint8)


@pytest.mark.parametrize("policy", AUGMENTATIONS)
@pytest.mark.parametrize("extras", [{}, {"cutout": 0, "random_erasing": 0.5}])
def test_train_transforms_give_normalized_float_images_of_the_same_size(policy, extras):
    config = resolve(TrainConfig(augmentation=policy, **extras))
    transform = build_train_transform(config, MEAN, STD)
    for seed in range(5):
        out = transform(_image(seed))
        assert out.shape == (3, 32, 32) and out.dtype == torch.float32
        assert out.min() >= (0 - 0.5) / 0.25 - 1e-5 and out.max() <= (1 - 0.5) / 0.25 + 1e-5


def test_test_transform_is_deterministic_normalization():
    transform = build_test_transform(resolve(TrainConfig()), MEAN, STD)
    image = _image()
    torch.testing.assert_close(transform(image), (image.float() / 255 - 0.5) / 0.25)


def test_randaugment_changes_images_but_keeps_their_size():
    config = resolve(TrainConfig(augmentation="randaugment", randaugment_n=2, randaugment_m=15))
    plain = build_train_transform(resolve(TrainConfig(augmentation="none")), MEAN, STD)
    transform = build_train_transform(config, MEAN, STD)
    torch.manual_seed(0)
    changed = sum(not torch.equal(transform(_image(s)), plain(_image(s))) for s in range(20))
    assert changed >= 15


def test_cutout_zeroes_exactly_a_size_by_size_square_inside_the_image():
    image = torch.ones(3, 32, 32)
    out = cutout(image, 16, center=(16, 16))
    assert (out == 0).all(0).sum() == 16 * 16
    assert (out[:, 8:24, 8:24] == 0).all()
    assert image.min() == 1  # the input is left alone


@pytest.mark.parametrize("center,expected", [((0, 0), 8 * 8), ((31, 31), 9 * 9), ((0, 16), 8 * 16)])
def test_cutout_is_clipped_at_the_borders(center, expected):
    out = cutout(torch.ones(3, 32, 32), 16, center=center)
    assert (out == 0).all(0).sum() == expected


def test_cutout_module_default_size_scales_with_the_image():
    assert resolve(TrainConfig(cutout=0)).cutout == 16
    assert resolve(TrainConfig(cutout=0, image_size=64)).cutout == 32
    torch.manual_seed(0)
    zeroed = [(Cutout(8)(torch.ones(1, 32, 32)) == 0).sum().item() for _ in range(50)]
    assert max(zeroed) == 64 and min(zeroed) >= 16  # a corner keeps at least a quarter


def _batch(n=64, classes=10):
    torch.manual_seed(0)
    return torch.rand(n, 3, 16, 16), torch.arange(n) % classes


def test_mixup_targets_sum_to_one_and_lambda_follows_beta():
    images, labels = _batch()
    mixer = BatchMixer(10, mixup_alpha=0.4)
    lambdas = []
    for seed in range(400):
        torch.manual_seed(seed)
        mixed, targets = mixer(images, labels)
        torch.testing.assert_close(targets.sum(1), torch.ones(len(labels)))
        # v2.MixUp pairs each image with its neighbour in the batch (a roll): lambda is the own-label weight
        lam = targets[0, labels[0]].item()
        torch.testing.assert_close(mixed[0], lam * images[0] + (1 - lam) * images[-1])
        lambdas.append(lam)
    lambdas = torch.tensor(lambdas)
    beta = torch.distributions.Beta(0.4, 0.4)
    assert lambdas.mean().item() == pytest.approx(beta.mean.item(), abs=0.05)
    assert lambdas.var().item() == pytest.approx(beta.variance.item(), rel=0.25)
    # Beta(0.4, 0.4) is U-shaped: most mass near 0 and 1
    assert ((lambdas < 0.1) | (lambdas > 0.9)).float().mean() > 0.4


def test_cutmix_target_weight_equals_the_pasted_area():
    images, labels = _batch()
    mixer = BatchMixer(10, cutmix_alpha=1.0)
    for seed in range(50):
        torch.manual_seed(seed)
        mixed, targets = mixer(images, labels)
        pasted = (mixed[0] != images[0]).any(0).float().mean().item()  # rand images: a pasted pixel differs
        own_weight = targets[0, labels[0]].item()
        assert own_weight == pytest.approx(1 - pasted, abs=1e-6)
        torch.testing.assert_close(targets.sum(1), torch.ones(len(labels)))


def test_mix_prob_zero_gives_plain_one_hot_targets():
    images, labels = _batch()
    mixed, targets = BatchMixer(10, mixup_alpha=1.0, cutmix_alpha=1.0, mix_prob=0.0)(images, labels)
    assert torch.equal(mixed, images) and torch.equal(targets.argmax(1), labels) and targets.max() == 1


def test_mixup_with_label_smoothing_loss_is_finite():
    images, labels = _batch()
    _, targets = BatchMixer(10, mixup_alpha=0.8)(images, labels)
    loss = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(torch.randn(len(labels), 10), targets)
    assert torch.isfinite(loss)


# ------------------------------------------------------------------------------------ regularization
@pytest.mark.parametrize("module", [StochasticDepth(0.0, "row"), DropBlock2d(0.0, 3), ScheduledDropBlock(0.0, 3)])
def test_identity_at_p_zero(module):
    x = torch.randn(8, 4, 8, 8)
    module.train()
    torch.testing.assert_close(module(x), x)


@pytest.mark.parametrize("module", [StochasticDepth(0.5, "row"), DropBlock2d(0.5, 3), ScheduledDropBlock(0.5, 3)])
def test_identity_in_eval(module):
    x = torch.randn(8, 4, 8, 8)
    module.eval()
    torch.testing.assert_close(module(x), x)


@pytest.mark.parametrize("module", [StochasticDepth(0.3, "row"), DropBlock2d(0.2, 3), ScheduledDropBlock(0.2, 3)])
def test_train_mode_preserves_the_expectation(module):
    torch.manual_seed(0)
    module.train()
    x = torch.ones(64, 8, 8, 8)
    means = torch.stack([module(x).mean() for _ in range(200)])
    assert means.mean().item() == pytest.approx(1.0, abs=0.03)
    assert (module(x) == 0).any()  # and it does drop something


@pytest.mark.parametrize("p", [0.05, 0.2])
def test_scheduled_dropblock_drops_what_torchvisions_drops(p):
    torch.manual_seed(0)
    x = torch.ones(32, 8, 12, 12)
    ours, theirs = ScheduledDropBlock(p, 3).train(), DropBlock2d(p, 3).train()
    dropped = [torch.stack([(module(x) == 0).float().mean() for _ in range(50)]).mean() for module in (ours, theirs)]
    assert dropped[0].item() == pytest.approx(dropped[1].item(), rel=0.1)
    ours.p.fill_(0.0)
    assert torch.allclose(ours(x), x)  # the schedule's start: nothing dropped


def test_scheduled_dropblock_takes_feature_maps_smaller_than_its_block():
    out = ScheduledDropBlock(0.3, 5).train()(torch.ones(4, 2, 2, 2))  # torchvision raises: block 2 is even
    assert out.shape == (4, 2, 2, 2) and torch.isfinite(out).all()


def test_compile_with_a_moving_dropblock_schedule_does_not_recompile():
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    model = create_model("resnet_tiny", dropblock_prob=0.1).train()
    compiled = torch.compile(model, backend="eager")  # the graph capture is what recompiles; no codegen needed
    for step in range(5):
        set_dropblock_prob(dropblock_layers(model), dropblock_prob_at(step / 5, 0.1))
        compiled(torch.randn(2, 3, 16, 16))
    assert counters["stats"]["unique_graphs"] == 1, dict(counters["stats"])
    assert not counters["recompiles"], dict(counters["recompiles"])


def test_dropblock_is_ramped_over_training_and_placed_in_late_stages():
    assert dropblock_prob_at(0.0, 0.1) == 0.0
    assert dropblock_prob_at(0.5, 0.1) == pytest.approx(0.05)
    assert dropblock_prob_at(2.0, 0.1) == pytest.approx(0.1)
    for name in ("resnet18", "efficientnet_b0"):
        model = create_model(name, dropblock_prob=0.1)
        assert set_dropblock_prob(dropblock_layers(model), 0.05) >= 2
        assert all(float(m.p) == pytest.approx(0.05) for m in model.modules() if isinstance(m, DropBlock2d))
    resnet = create_model("resnet18", dropblock_prob=0.1)
    assert not any(isinstance(m, DropBlock2d) for m in resnet.stages[:2].modules())
    assert any(isinstance(m, DropBlock2d) for m in resnet.stages[2:].modules())


def test_the_dropblock_flag_reaches_the_model_through_the_config():
    from utils.experiment import build_model

    with_flag = build_model(resolve(TrainConfig(model="resnet_tiny", dropblock=0.1)), 10)
    without = build_model(resolve(TrainConfig(model="resnet_tiny")), 10)
    assert sum(isinstance(m, DropBlock2d) for m in with_flag.modules()) == 3  # stages 3 and 4: 2 + 1 blocks
    assert not any(isinstance(m, DropBlock2d) for m in without.modules())
    # a model without DropBlock layers ignores the option instead of failing
    model = build_model(resolve(TrainConfig(model="cnn", dropblock=0.1)), 10)
    assert not any(isinstance(m, DropBlock2d) for m in model.modules())
