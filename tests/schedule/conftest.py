import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """These nets are tiny: intra-op threads only add contention on shared CPUs (4x slower measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
