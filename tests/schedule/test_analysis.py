"""schedule.analysis: a schedule in iterations is analysed without an epoch length; only epoch figures go missing."""
import pytest

from explr.lr_schedule import LRSchedule
from explr.schedule.analysis import analyze
from explr.schedule.phantom import SGDHyper

SCHEDULE = LRSchedule(base_lr=0.02, total_iters=1800, milestones=(1200, 1600), warmup_iters=100, warmup_factor=0.001,
                      warmup_blend="ramp_to_decay")
HYPER = SGDHyper(0.9, 0.0, 1e-4)


def test_unknown_iterations_per_epoch_leaves_only_epoch_figures_empty():
    known, unknown = analyze(SCHEDULE, HYPER, 100), analyze(SCHEDULE, HYPER, None)
    assert unknown.run == known.run and unknown.s_final == known.s_final and unknown.alpha == known.alpha
    assert unknown.growth_per_epoch is None and known.growth_per_epoch == pytest.approx(known.growth_per_step ** 100)
    assert [p.growth_per_epoch for p in unknown.phases] == [None] * len(known.phases)
    assert [(p.start_iter, p.end_iter, p.converted_lr_end) for p in unknown.phases] == \
        [(p.start_iter, p.end_iter, p.converted_lr_end) for p in known.phases]
    data = unknown.to_json()
    assert data["inputs"]["iters_per_epoch"] is None and data["growth_per_epoch"] is None
    assert all(h["epoch"] is None for h in data["horizons"].values())


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_a_given_epoch_length_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match=r"iters_per_epoch=.* must be an integer > 0"):
        analyze(SCHEDULE, HYPER, bad)
