"""explr.load.api: load_model puts spec, model and inputs together; device="meta" allocates no weight."""
import pytest

from explr.load import load_model
from tests.load.helpers import MODELS, spec


def test_the_loaded_model_names_its_spec_and_file():
    loaded = load_model(spec("tiny_cnn.py"))
    assert loaded.name == spec("tiny_cnn.py") and loaded.path == str(MODELS / "tiny_cnn.py")


def test_meta_device_imports_and_builds_under_meta():
    built = load_model(spec("records_device.py"), device="meta").model
    assert (built.imported_on, built.built_on) == ("meta", "meta")
    assert load_model(spec("records_device.py")).model.built_on == "cpu"


@pytest.mark.parametrize("model", ["tiny_cnn.py", "instance_with_inputs.py"])  # factory; module-level instance
def test_meta_device_gives_meta_model_and_inputs(model):
    loaded = load_model(spec(model), device="meta")
    assert all(p.is_meta for p in loaded.model.parameters())
    assert all(x.is_meta for x in loaded.example_inputs)
