"""explr.load.spec: parsing a spec, importing the file or module it names, and each import failure as one line."""
import sys

import pytest
import torch
from torch import nn

from explr.errors import LoadError
from explr.load import load_model, parse_spec
from explr.load.spec import imported
from tests.load.helpers import MODELS, spec


def test_spec_parsing():
    assert parse_spec("a/b.py:Net").attr == "Net" and parse_spec("a/b.py:Net").is_file
    assert parse_spec("pkg.mod:build").is_file is False
    assert parse_spec("C:/models/net.py").attr is None  # a drive letter is not a NAME
    assert parse_spec("pkg.mod").attr is None


def test_a_file_is_imported_under_its_own_name_and_forgotten_afterwards():
    path_before = list(sys.path)
    with imported(parse_spec(spec("tiny_cnn.py"))) as module:
        assert module.__file__ == str(MODELS / "tiny_cnn.py") and str(MODELS) in sys.path
    assert sys.path == path_before


def test_package_module_colon_name():
    loaded = load_model("torch.nn:Linear", kwargs={"in_features": 4, "out_features": 2})
    assert isinstance(loaded.model, nn.Linear) and loaded.example_inputs[0].shape == (2, 4)
    assert loaded.path == torch.nn.__file__


def test_sibling_helper_modules_do_not_leak_between_loads():
    path_before = list(sys.path)
    a = load_model(spec("sibling_a/net.py")).model
    b = load_model(spec("sibling_b/net.py")).model
    assert (a.in_features, b.in_features) == (3, 7)
    assert "blocks" not in sys.modules and sys.path == path_before


@pytest.mark.parametrize("model, expected", [
    ("missing.py", ["missing.py does not exist"]),
    ("syntax_error.py", ["syntax_error.py:3: syntax error", "fix the model file"]),
    ("raises_on_import.py", ["raises_on_import.py", "RuntimeError: DATA_ROOT is not set"]),
    (".", ["is a directory", "give the .py file"]),
])
def test_a_file_that_cannot_be_imported_is_one_line_naming_it(model, expected):
    with pytest.raises(LoadError) as info:
        load_model(spec(model))
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message


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
