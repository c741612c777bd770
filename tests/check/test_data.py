"""Data for the check: synthetic by default, the user's batches via --data or train_batches(); bad data -> DataError."""
from __future__ import annotations

import textwrap

import pytest
import torch

from explr.check.api import CheckOptions, check
from explr.check.budget import DataSize
from explr.check.data import DataError, data_source, first_batch, loss_of, synthetic_batches
from tests.check.helpers import plan

MODEL = textwrap.dedent("""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(6)
            self.drop = nn.Dropout(0.3)
            self.fc = nn.Linear(6, 3)

        def forward(self, x):
            return self.fc(self.drop(torch.relu(self.bn(self.conv(x))).mean((2, 3))))

    def build_model():
        torch.manual_seed(0)
        return Net()

    def example_inputs():
        return (torch.randn(2, 3, 6, 6),)
""")
SI = ["conv.weight"]
OPTS = CheckOptions(steps=8, batch_size=4)


def write_model(tmp_path, extra=""):
    path = tmp_path / "net.py"
    path.write_text(MODEL + textwrap.dedent(extra))
    return str(path)


def test_train_batches_in_the_model_file_is_used_and_dropout_is_seeded_alike(tmp_path):
    spec = write_model(tmp_path, """
        CALLS = []
        def train_batches():
            CALLS.append(1)
            g = torch.Generator().manual_seed(len(CALLS))
            return [(torch.randn(5, 3, 6, 6, generator=g), torch.randint(0, 3, (5,), generator=g)) for _ in range(3)]
    """)
    logged = []
    result = check(spec, plan(), si=SI, options=OPTS, log=logged.append)
    assert f"data: {spec}:train_batches" in logged  # restarted when exhausted: 8 steps from 3-batch lists
    assert result.passed and result.max_rel_deviation < 1e-11  # dropout masks identical in both runs


def test_data_option_names_a_function_in_another_file(tmp_path):
    spec = write_model(tmp_path)
    (tmp_path / "mydata.py").write_text("import torch\n"
                                        "def batches():\n"
                                        "    while True:\n"
                                        "        yield torch.randn(4, 3, 6, 6), torch.randn(4, 3)\n")
    result = check(spec, plan(), si=SI, options=CheckOptions(steps=6, data=f"{tmp_path / 'mydata.py'}:batches"))
    assert result.passed  # float targets: mean squared error


@pytest.mark.parametrize("body,message", [
    ("def bad():\n    raise OSError('disk gone')\n", r"bad\(\) raised OSError: disk gone"),
    ("import torch\ndef bad():\n    return [(torch.randn(4, 5, 6, 6), torch.zeros(4, dtype=torch.long))]\n",
     r"baddata.py:bad: the model or the loss rejected the first batch \(\(4, 5, 6, 6\) -> target \(4,\)\)"),
    ("import torch\ndef bad():\n    return [(torch.randn(4, 3, 6, 6), torch.zeros(4, dtype=torch.long)),\n"
     "            (torch.randn(4, 5, 6, 6), torch.zeros(4, dtype=torch.long))]\n",
     r"step 2 \(original run\): the model or the loss rejected a batch"),
    ("import torch\ndef bad():\n    return [(torch.randn(1, 3, 6, 6), torch.zeros(1, dtype=torch.long))]\n",
     "at least 2 samples"),
    ("import torch\ndef bad():\n    return [torch.randn(4, 3, 6, 6)]\n", "not an \\(inputs, target\\) pair"),
    ("def bad():\n    return []\n", "returned no batches"),
    ("import torch\ndef bad():\n    return [(torch.full((4, 3, 6, 6), float('nan')), torch.zeros(4, dtype=torch.long))]\n",
     r"original run's loss became nan at step 1"),
])
def test_bad_data_is_one_clear_error(tmp_path, body, message):
    spec = write_model(tmp_path)
    (tmp_path / "baddata.py").write_text(body)
    with pytest.raises(Exception, match=message) as info:
        check(spec, plan(), si=SI, options=CheckOptions(steps=4, data=f"{tmp_path / 'baddata.py'}:bad"))
    assert info.type.__name__ in ("DataError", "TrainingError")


def test_data_option_must_name_an_existing_function(tmp_path):
    spec = write_model(tmp_path)
    (tmp_path / "mydata.py").write_text("x = 1\n")
    with pytest.raises(DataError, match="has no function 'missing'"):
        check(spec, plan(), si=SI, options=CheckOptions(steps=4, data=f"{tmp_path / 'mydata.py'}:missing"))


def test_synthetic_batches_follow_the_example_shape_and_class_count():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 7))
    batch = next(synthetic_batches(model, (torch.randn(2, 3, 4),), batch=5, seed=0)())
    assert batch.inputs[0].shape == (5, 3, 4) and batch.target.shape == (5,) and int(batch.target.max()) < 7
    again = next(synthetic_batches(model, (torch.randn(2, 3, 4),), batch=5, seed=0)())
    assert torch.equal(batch.inputs[0], again.inputs[0])  # same seed, same stream


def test_loss_is_cross_entropy_for_labels_and_mse_for_float_targets():
    logits = torch.tensor([[2.0, 0.0]])
    assert loss_of(logits, torch.tensor([0])) == pytest.approx(torch.nn.functional.cross_entropy(logits, torch.tensor([0])).item())
    assert loss_of(logits, torch.tensor([[1.0, 1.0]])).item() == pytest.approx(1.0)


class Pooled(torch.nn.Module):
    """Takes any image size (global pooling), so synthetic images may shrink."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, bias=False)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def test_the_data_source_is_the_users_function_when_there_is_one(tmp_path):
    spec = write_model(tmp_path, """
        def train_batches():
            return [(torch.randn(4, 3, 6, 6), torch.zeros(4, dtype=torch.long))]
    """)
    from explr.load import load_model

    loaded = load_model(spec)
    source = data_source(None, spec, loaded.model, loaded.example_inputs, seed=0, may_shrink=True)
    assert source.user and source.where.endswith("net.py:train_batches") and source.side is None
    assert next(source.make(DataSize(99))()).inputs[0].shape == (4, 3, 6, 6)  # the user's batches keep their size


def test_synthetic_images_may_shrink_only_when_large_and_allowed():
    model, images = Pooled(), (torch.randn(2, 3, 128, 128),)
    source = data_source(None, "", model, images, seed=0, may_shrink=True)
    assert not source.user and source.where == "synthetic data" and source.side == 128
    assert next(source.make(DataSize(3, shrink=4))()).inputs[0].shape == (3, 3, 32, 32)
    assert data_source(None, "", model, images, seed=0, may_shrink=False).side is None
    assert data_source(None, "", model, (torch.randn(2, 3, 32, 32),), seed=0, may_shrink=True).side is None


def test_the_first_batch_is_checked_against_the_model_before_any_training():
    source = data_source(None, "", Pooled(), (torch.randn(2, 3, 8, 8),), seed=0, may_shrink=False)
    model = Pooled().double()  # as the check's runs: batches are moved to their dtype
    first = first_batch(source.make(DataSize(2)), model, source.where, torch.device("cpu"), torch.float64)
    assert first.inputs[0].shape == (2, 3, 8, 8) and first.inputs[0].dtype == torch.float64
    with pytest.raises(DataError, match="synthetic data: batches need at least 2 samples"):
        first_batch(source.make(DataSize(1)), model, source.where, torch.device("cpu"), torch.float64)
