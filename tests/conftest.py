import pathlib

import pytest
import torch

# Test models are tiny: one intra-op thread is faster than contending for the CI machine's 2 cores.
torch.set_num_threads(1)

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture
def fixtures_dir() -> pathlib.Path:
    return FIXTURES
