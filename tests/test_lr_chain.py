"""explr.lr_chain: the replay's value type, its events and how LRSchedule carries it (mmengine's own LRs are
checked in tests/configs/test_mmengine_chain.py)."""
from __future__ import annotations

import pytest

from explr.lr_chain import ChainLink, chain_events, chained_lrs
from explr.lr_schedule import LRSchedule

WARMUP = ChainLink("LinearLR", 0, 4, 1, (("start_factor", 0.5),))
RESTARTS = ChainLink("CosineRestartLR", 1, 5, 3, (("eta_min", 0.0), ("periods", (2, 2)), ("restart_weights", (1, 0.5))))


def test_links_round_trip_through_their_config_form():
    for link in (WARMUP, RESTARTS):
        assert ChainLink.from_dict(link.to_dict()) == link
    assert RESTARTS.to_dict()["args"]["periods"] == [2, 2]


def test_events_are_where_a_scheduler_starts_stops_or_restarts_inside_training():
    assert chain_events((WARMUP, RESTARTS), 15) == [("CosineRestartLR begins", 3), ("CosineRestartLR restart", 9),
                                                    ("LinearLR ends", 4)]


def test_the_last_lr_is_held_after_training():
    schedule = LRSchedule(base_lr=0.1, total_iters=6, decay="chain", chain=(WARMUP,))
    schedule.validate()
    lrs = chained_lrs(schedule.chain, 0.1, 6)
    assert len(lrs) == 7 and schedule.lr_at(0) == 0.05 and schedule.lr_at(100) == lrs[-1] == schedule.lr_at(6)


@pytest.mark.parametrize("fields, message", [
    (dict(decay="chain"), "needs a chain"),
    (dict(decay="step", chain=(WARMUP,)), "only it takes one"),
    (dict(decay="chain", chain=(ChainLink("SawtoothLR", 0, 3, 1),)), "needs a chain"),
    (dict(decay="chain", chain=(ChainLink("LinearLR", 0, 4, 1, (("start_factor", 0.0),)),)), "fail to step"),
])
def test_invalid_chains_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        LRSchedule(base_lr=0.1, total_iters=6, **fields).validate()
