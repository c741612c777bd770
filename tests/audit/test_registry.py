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
        elif name.split(".", 1)[0] in ("F", "torch", "operator", "getattr"):
            assert callable(key) and resolve(name) is key, name
        else:  # registered by the object itself (a library function)
            assert callable(key), name


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


def test_an_op_object_outside_the_namespaces_can_be_registered_once():
    def library_op(x):
        return x
    try:
        rule(library_op)(lambda call: None)
        assert TABLE[library_op] is not None and NAMES[library_op].endswith("library_op")
        with pytest.raises(RuntimeError, match="duplicate"):
            rule(library_op)(lambda call: None)
        with pytest.raises(RuntimeError, match="neither an op name nor a callable"):
            rule(42)(lambda call: None)
    finally:
        TABLE.pop(library_op, None)
        NAMES.pop(library_op, None)
