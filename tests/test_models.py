import pytest
import torch
from torch import nn
from torchvision.ops import StochasticDepth

from models import count_parameters, create_model, list_models, register_model
from utils.errors import UserError

# The seed's table of parameter counts (millions, 10 classes, 32×32); each model must be within ±25%.
EXPECTED_PARAMS_M = {
    "cnn": 1.2, "resnet_tiny": 2, "resnet18": 11, "resnet34": 21, "resnet50": 23, "efficientnet_tiny": 1,
    "efficientnet_b0": 4, "efficientnet_b1": 6, "cnn_transformer_small": 8, "cnn_transformer_base": 16,
    "vit_tiny": 5,
    "speednet": 1.97,  # not in the seed's table: airbench94's layout, 1.97M as counted by --list-models
}


def test_registry_holds_the_eleven_models():
    assert set(list_models()) == set(EXPECTED_PARAMS_M)


@pytest.mark.parametrize("name", list_models())
def test_parameter_count_matches_the_table(name):
    millions = count_parameters(create_model(name)) / 1e6
    assert abs(millions - EXPECTED_PARAMS_M[name]) <= 0.25 * EXPECTED_PARAMS_M[name], millions


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("image_size", [32, 64])
def test_output_shape(name, image_size):
    model = create_model(name, num_classes=7, image_size=image_size).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, image_size, image_size)).shape == (2, 7)


@pytest.mark.parametrize("name", list_models())
def test_backward_gives_finite_gradients_everywhere(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10)
    loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.arange(4))
    loss.backward()
    for parameter_name, parameter in model.named_parameters():
        if not parameter.requires_grad:  # frozen by design (speednet's whitening filters, fixed BatchNorm scales)
            assert parameter.grad is None, parameter_name
            continue
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name


@pytest.mark.parametrize("name", list_models())
def test_same_interface_features_then_head(name):
    model = create_model(name).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_head(model.forward_features(x)), model(x))


@pytest.mark.parametrize("name", list_models())
def test_activation_swap_leaves_no_relu(name):
    model = create_model(name, activation="gelu")
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    assert any(isinstance(m, nn.GELU) for m in model.modules())


@pytest.mark.parametrize("name", [n for n in list_models() if n not in ("cnn", "speednet")])  # no residual blocks
def test_drop_path_grows_linearly_with_depth(name):
    model = create_model(name, drop_path_rate=0.2)
    rates = [m.p for m in model.modules() if isinstance(m, StochasticDepth)]
    assert rates, "a residual model must have stochastic depth when asked"
    # the deepest residual block gets the full rate (EfficientNet's last block has no residual: a bit less)
    assert 0.15 < max(rates) <= 0.2 + 1e-9
    assert rates == sorted(rates)  # never decreasing with depth
    assert not any(isinstance(m, StochasticDepth) for m in create_model(name).modules())


def test_unknown_model_names_the_close_ones():
    with pytest.raises(UserError, match="unknown model 'resnet19'.*resnet18"):
        create_model("resnet19")


def test_registering_a_name_twice_raises():
    with pytest.raises(ValueError, match="twice"):
        @register_model("resnet")
        def resnet18(**kwargs):  # noqa: F811
            return nn.Identity()


def test_squeeze_excitation_as_matrix_products_equals_its_1x1_convolutions():
    """SqueezeExcite applies its 1×1 conv weights to the pooled vector with F.linear: the same numbers as the
    convolutions on N×C×1×1, and the state dict keeps the convolutions' layout (checkpoints load as before)."""
    from models.efficientnet import SqueezeExcite

    torch.manual_seed(0)
    se = SqueezeExcite(16, 4, "silu")
    x = torch.randn(3, 16, 5, 5)
    pooled = x.mean((2, 3), keepdim=True)
    reference = x * torch.sigmoid(se.expand(se.activation(se.reduce(pooled))))
    torch.testing.assert_close(se(x), reference, rtol=1e-6, atol=1e-6)
    assert se.state_dict()["reduce.weight"].shape == (4, 16, 1, 1)
