"""The transfer-rule table: every key is a real op, registration is checked, dispatch goes by object."""
from __future__ import annotations

import pytest
import torch
from torch import fx

import explr.audit.degrees  # noqa: F401 - loads the rule modules into the table
from explr.audit.registry import NAMES, SPECIAL, TABLE, resolve, rule


def test_every_key_resolves_to_a_real_op():
    for key, name in NAMES.items():
        assert key in TABLE
        if key in SPECIAL:
            continue
        if isinstance(key, str):
            assert key.startswith("Tensor.") and hasattr(torch.Tensor, key.split(".", 1)[1]), name
        else:
            assert callable(key) and resolve(name) is key, name


def test_names_that_resolve_differently_are_the_same_op():
    assert resolve("torch.linalg.vector_norm") in TABLE  # its __name__ is linalg_vector_norm: a string key missed it


@pytest.mark.parametrize("bad", ["torch.no_such_op", "F.relu6x", "Tensor.no_such_method", "numpy.add"])
def test_a_key_that_names_nothing_is_an_error(bad):
    with pytest.raises(RuntimeError, match="transfer rule key"):
        rule(bad)(lambda call: None)


def test_duplicate_registration_is_an_error_also_under_another_name():
    assert torch.nn.functional.hardshrink is torch.hardshrink
    with pytest.raises(RuntimeError, match="duplicate"):
        rule("torch.hardshrink")(lambda call: None)


def relu(x):  # a user function that shares torch.relu's name
    return torch.tanh(x)


def test_dispatch_is_by_object_not_by_name():
    graph = fx.Graph()
    x = graph.placeholder("x")
    node = graph.call_function(relu, (x,))
    from explr.audit.registry import lookup, op_name
    assert lookup(node) == (None, False)
    assert op_name(node) == f"{__name__}.relu"
