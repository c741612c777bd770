"""Runner pieces: failures inside a step become one line; the original schedule is written exactly; explr.check."""
from __future__ import annotations

import pytest
import torch

from explr.check.data import DataError
from explr.check.runner import ExactSchedule, TrainingError, _guard, rel_deviation
from explr.lr_schedule import LRSchedule


def test_out_of_memory_names_the_step_and_run_and_what_to_do():
    with pytest.raises(TrainingError, match=r"out of memory at step 7 \(converted run\).*--batch-size"):
        with _guard(7, "converted", "synthetic data"):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_a_model_error_inside_a_step_is_a_data_error_naming_the_source():
    with pytest.raises(DataError, match=r"step 1 \(original run\).*mydata:batches.*mat1 and mat2"):
        with _guard(1, "original", "mydata:batches"):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x5 and 3x2)")


def test_exact_schedule_writes_the_original_lr_of_each_iteration():
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([{"params": [param]}, {"params": [torch.zeros(1, requires_grad=True)]}], lr=1.0)
    schedule = LRSchedule(0.1, 10, milestones=(3,), gamma=0.5)
    sched = ExactSchedule(opt, schedule.lr_at)
    seen = []
    for _ in range(5):
        seen.append([g["lr"] for g in opt.param_groups])
        sched.step()
    assert seen == [[schedule.lr_at(i)] * 2 for i in range(5)]


def test_rel_deviation_is_relative_to_the_reference():
    y = torch.tensor([3.0, 4.0])
    assert rel_deviation(y + torch.tensor([0.0, 0.5]), y) == pytest.approx(0.1)
    assert rel_deviation(torch.zeros(2), torch.zeros(2)) == 0.0


def test_explr_check_stays_callable_after_the_package_is_imported():
    import explr.check  # binds the submodule onto `explr`
    from explr.check.api import check

    assert callable(explr.check) and explr.check.check is check
