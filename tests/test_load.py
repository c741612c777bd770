"""explr.load: every model-spec form, inferred inputs, meta device, and each bad input as one line."""
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from explr.errors import LoadError
from explr.load import load_model, parse_kwargs, parse_shape, parse_spec

MODELS = Path(__file__).parent / "data" / "models"


def spec(name: str) -> str:
    return str(MODELS / name)


# ------------------------------------------------------------------------------ the spec forms

def test_file_with_zero_argument_factory_and_inferred_inputs():
    loaded = load_model(spec("tiny_cnn.py"))
    assert type(loaded.model).__name__ == "TinyCNN" and loaded.model.fc.out_features == 10
    (x,) = loaded.example_inputs
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    assert "inferred from the first layer conv: Conv2d" in loaded.inputs_note
    assert loaded.path == str(MODELS / "tiny_cnn.py")


def test_file_colon_class_with_kwargs():
    loaded = load_model(spec("tiny_cnn.py:TinyCNN"), kwargs={"num_classes": 3})
    assert loaded.model.fc.out_features == 3


def test_module_level_instance_and_its_example_inputs():
    loaded = load_model(spec("instance_with_inputs.py"))
    assert isinstance(loaded.model, nn.Sequential)
    assert loaded.example_inputs[0].shape == (3, 5)
    assert "from example_inputs()" in loaded.inputs_note


def test_the_one_constructible_class_is_picked():
    loaded = load_model(spec("one_class.py"))
    assert type(loaded.model).__name__ == "Net"


def test_package_module_colon_name():
    loaded = load_model("torch.nn:Linear", kwargs={"in_features": 4, "out_features": 2})
    assert isinstance(loaded.model, nn.Linear) and loaded.example_inputs[0].shape == (2, 4)


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


def test_meta_device_imports_and_builds_under_meta():
    built = load_model(spec("records_device.py"), device="meta").model
    assert (built.imported_on, built.built_on) == ("meta", "meta")
    assert load_model(spec("records_device.py")).model.built_on == "cpu"


@pytest.mark.parametrize("model", ["tiny_cnn.py", "instance_with_inputs.py"])  # factory; module-level instance
def test_meta_device_gives_meta_model_and_inputs(model):
    loaded = load_model(spec(model), device="meta")
    assert all(p.is_meta for p in loaded.model.parameters())
    assert all(x.is_meta for x in loaded.example_inputs)


def test_sibling_helper_modules_do_not_leak_between_loads():
    path_before = list(sys.path)
    a = load_model(spec("sibling_a/net.py")).model
    b = load_model(spec("sibling_b/net.py")).model
    assert (a.in_features, b.in_features) == (3, 7)
    assert "blocks" not in sys.modules and sys.path == path_before


# ------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("model, kwargs, expected", [
    ("missing.py", None, ["missing.py does not exist"]),
    ("syntax_error.py", None, ["syntax_error.py:3: syntax error", "fix the model file"]),
    ("raises_on_import.py", None, ["raises_on_import.py", "RuntimeError: DATA_ROOT is not set"]),
    ("factory_raises.py", None, ["factory_raises.py:build_model()", "FileNotFoundError: weights/resnet.pt not found"]),
    ("two_classes.py", None, ["several candidate models (Small, Large)", "two_classes.py:Small"]),
    ("kuangliu_resnet.py", None, ["several model factories (ResNet8, ResNet14)", "kuangliu_resnet.py:ResNet8"]),
    ("kuangliu_resnet.py", {"num_classes": 3},
     ["no model found", "factories ResNet8, ResNet14", "classes BasicBlock, ResNet"]),
    (".", None, ["is a directory", "give the .py file"]),
    ("no_model.py", None, ["no_model.py: no model found", "build_model()"]),
    ("needs_args.py", None, ["needs_args.py:build_model needs argument width", "--kwargs '{\"width\": ...}'"]),
    ("tiny_cnn.py", {"depth": 3}, ["does not accept --kwargs depth", "num_classes"]),
    ("not_a_module.py", None, ["not_a_module.py:model is of type int, not an nn.Module"]),
    ("not_a_module.py:settings", None, ["not_a_module.py:settings is of type dict"]),
    ("not_a_module.py:not_a_factory", None, ["not_a_factory() returned str, not an nn.Module"]),
    ("tiny_cnn.py:Nope", None, ["has no attribute 'Nope'", "TinyCNN, build_model"]),
])
def test_bad_model_files_raise_one_line_naming_the_thing(model, kwargs, expected):
    with pytest.raises(LoadError) as info:
        load_model(spec(model), kwargs=kwargs)
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message


def test_kuangliu_style_file_builds_its_one_zero_argument_factory():
    loaded = load_model(spec("kuangliu_one_factory.py"))  # not test(), which only runs the model
    assert type(loaded.model).__name__ == "ResNet" and len(loaded.model.layers) == 3
    assert loaded.name.endswith("kuangliu_one_factory.py")


def test_the_top_level_class_wins_over_the_blocks_it_uses():
    assert type(load_model(spec("nested_classes.py")).model).__name__ == "Net"


def test_binary_model_file_is_one_line_without_a_line_number(tmp_path):
    binary = tmp_path / "weights.py"
    binary.write_bytes(b"\x00\xff\xfe\x00 not python")
    with pytest.raises(LoadError) as info:
        load_model(str(binary))
    message = str(info.value)
    assert message.startswith(f"{binary}: syntax error") and "None" not in message and "\n" not in message


def test_missing_module():
    with pytest.raises(LoadError, match="module 'no_such_pkg.models' not found"):
        load_model("no_such_pkg.models:Net")


@pytest.mark.parametrize("text", ["{bad json", "[1, 2]"])
def test_invalid_kwargs(text):
    with pytest.raises(LoadError, match="--kwargs"):
        parse_kwargs(text)


@pytest.mark.parametrize("text", ["2,x,3", "2,0", ""])
def test_invalid_shape(text):
    with pytest.raises(LoadError, match="--input-shape"):
        parse_shape(text)


def test_spec_parsing():
    assert parse_spec("a/b.py:Net").attr == "Net" and parse_spec("a/b.py:Net").is_file
    assert parse_spec("pkg.mod:build").is_file is False
    assert parse_spec("C:/models/net.py").attr is None  # a drive letter is not a NAME
    assert parse_spec("pkg.mod").attr is None
