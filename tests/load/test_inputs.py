"""explr.load.inputs: --input-shape, the file's example_inputs(), or inputs inferred from the first layer."""
import pytest
import torch

from explr.errors import LoadError
from explr.load import load_model, parse_shape
from tests.load.helpers import spec


def test_inputs_inferred_from_the_first_layer():
    loaded = load_model(spec("tiny_cnn.py"))
    (x,) = loaded.example_inputs
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    assert "inferred from the first layer conv: Conv2d" in loaded.inputs_note


def test_the_files_own_example_inputs():
    loaded = load_model(spec("instance_with_inputs.py"))
    assert loaded.example_inputs[0].shape == (3, 5)
    assert "from example_inputs()" in loaded.inputs_note


def test_embedding_first_gets_integer_tokens():
    (tokens,) = load_model(spec("tokens.py")).example_inputs
    assert tokens.dtype == torch.long and tokens.shape == (2, 16) and int(tokens.max()) < 50


def test_input_shapes_override_and_are_stated():
    loaded = load_model(spec("linear_8.py"), input_shapes=[(5, 8)])
    assert loaded.example_inputs[0].shape == (5, 8)
    assert "float32[5, 8] (from --input-shape)" == loaded.inputs_note


def test_repeated_input_shapes_give_several_inputs():
    loaded = load_model(spec("two_inputs.py"), input_shapes=[(2, 3, 8, 8), (2, 5)])
    assert [tuple(x.shape) for x in loaded.example_inputs] == [(2, 3, 8, 8), (2, 5)]
    assert loaded.model(*loaded.example_inputs).shape == (2, 4)


@pytest.mark.parametrize("text", ["2,x,3", "2,0", ""])
def test_invalid_shape(text):
    with pytest.raises(LoadError, match="--input-shape"):
        parse_shape(text)
