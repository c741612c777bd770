"""explr.load.choose: which object of a file is the model, building it with --kwargs, and each bad choice as
one line."""
import pytest
from torch import nn

from explr.errors import LoadError
from explr.load import load_model, parse_kwargs
from tests.load.helpers import spec


def test_file_with_zero_argument_factory():
    loaded = load_model(spec("tiny_cnn.py"))
    assert type(loaded.model).__name__ == "TinyCNN" and loaded.model.fc.out_features == 10


def test_file_colon_class_with_kwargs():
    loaded = load_model(spec("tiny_cnn.py:TinyCNN"), kwargs={"num_classes": 3})
    assert loaded.model.fc.out_features == 3


def test_module_level_instance():
    assert isinstance(load_model(spec("instance_with_inputs.py")).model, nn.Sequential)


def test_the_one_constructible_class_is_picked():
    loaded = load_model(spec("one_class.py"))
    assert type(loaded.model).__name__ == "Net"


def test_kuangliu_style_file_builds_its_one_zero_argument_factory():
    loaded = load_model(spec("kuangliu_one_factory.py"))  # not test(), which only runs the model
    assert type(loaded.model).__name__ == "ResNet" and len(loaded.model.layers) == 3
    assert loaded.name.endswith("kuangliu_one_factory.py")


def test_the_top_level_class_wins_over_the_blocks_it_uses():
    assert type(load_model(spec("nested_classes.py")).model).__name__ == "Net"


@pytest.mark.parametrize("model, kwargs, expected", [
    ("factory_raises.py", None, ["factory_raises.py:build_model()", "FileNotFoundError: weights/resnet.pt not found"]),
    ("two_classes.py", None, ["several candidate models (Small, Large)", "two_classes.py:Small"]),
    ("kuangliu_resnet.py", None, ["several model factories (ResNet8, ResNet14)", "kuangliu_resnet.py:ResNet8"]),
    ("kuangliu_resnet.py", {"num_classes": 3},
     ["no model found", "factories ResNet8, ResNet14", "classes BasicBlock, ResNet"]),
    ("no_model.py", None, ["no_model.py: no model found", "build_model()"]),
    ("needs_args.py", None, ["needs_args.py:build_model needs argument width", "--kwargs '{\"width\": ...}'"]),
    ("tiny_cnn.py", {"depth": 3}, ["does not accept --kwargs depth", "num_classes"]),
    ("not_a_module.py", None, ["not_a_module.py:model is of type int, not an nn.Module"]),
    ("not_a_module.py:settings", None, ["not_a_module.py:settings is of type dict"]),
    ("not_a_module.py:not_a_factory", None, ["not_a_factory() returned str, not an nn.Module"]),
    ("tiny_cnn.py:Nope", None, ["has no attribute 'Nope'", "TinyCNN, build_model"]),
])
def test_no_model_to_build_is_one_line_naming_the_thing(model, kwargs, expected):
    with pytest.raises(LoadError) as info:
        load_model(spec(model), kwargs=kwargs)
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message


@pytest.mark.parametrize("text", ["{bad json", "[1, 2]"])
def test_invalid_kwargs(text):
    with pytest.raises(LoadError, match="--kwargs"):
        parse_kwargs(text)


def test_kwargs_are_a_json_object():
    assert parse_kwargs('{"num_classes": 10}') == {"num_classes": 10} and parse_kwargs(None) == {}
