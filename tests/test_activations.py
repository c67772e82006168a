import pytest
import torch
from torch import nn

from models.activations import ALIASES, Mish, Swish, get_activation, list_activations
from utils.errors import UserError


def test_registry_has_at_least_eight_activations():
    names = list_activations()
    assert len(names) >= 8
    for required in ("relu", "leaky_relu", "elu", "selu", "gelu", "swish", "mish", "hardswish"):
        assert required in names


@pytest.mark.parametrize("name", list_activations())
def test_every_activation_builds_a_fresh_module_that_keeps_the_shape(name):
    first, second = get_activation(name), get_activation(name)
    assert isinstance(first, nn.Module) and first is not second
    x = torch.randn(4, 3, 5, 5)
    assert first(x.clone()).shape == x.shape


def test_each_alias_builds_the_function_of_its_name():
    x = torch.linspace(-6, 6, 241)
    for alias, name in ALIASES.items():
        torch.testing.assert_close(get_activation(alias)(x.clone()), get_activation(name)(x.clone()))


def test_distinct_names_are_distinct_functions():
    """The activations study trains ``list_activations(distinct=True)``: no two of them may tie by construction."""
    x = torch.linspace(-6, 6, 241)
    outputs = {name: get_activation(name)(x.clone()) for name in list_activations(distinct=True)}
    names = sorted(outputs)
    same = [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if torch.allclose(outputs[a], outputs[b])]
    assert same == []
    assert set(list_activations()) - set(names) == set(ALIASES)


def test_hand_written_swish_equals_torch_silu():
    x = torch.linspace(-8, 8, 1001, dtype=torch.float64)
    torch.testing.assert_close(Swish()(x), nn.SiLU()(x))


def test_hand_written_mish_equals_torch_mish():
    x = torch.linspace(-8, 8, 1001, dtype=torch.float64)
    torch.testing.assert_close(Mish()(x), nn.Mish()(x))


def test_hand_written_swish_gradient_equals_torch_silu_gradient():
    x1 = torch.linspace(-5, 5, 101, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    Swish()(x1).sum().backward()
    nn.SiLU()(x2).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_unknown_activation_names_the_close_choices():
    with pytest.raises(UserError, match="unknown activation 'rleu'.*relu"):
        get_activation("rleu")
