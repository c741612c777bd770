import math

import pytest

from explr.schedule.phantom import Phantom, SGDHyper, converted_lrs


def test_blog_growth_per_epoch_is_1_4812():
    lrs = [lr for lr, _ in converted_lrs(lambda i: 0.1, SGDHyper(0.9, 0.0, 5e-4), 4000)]
    assert lrs[3999] / lrs[3999 - 391] == pytest.approx(1.4812, abs=5e-5)


def test_momentum_zero_closed_form():
    lr, wd = 0.1, 5e-4
    for t, (lr_tilde, s) in enumerate(converted_lrs(lambda i: lr, SGDHyper(0.0, 0.0, wd), 300), start=1):
        assert s == pytest.approx((1 - lr * wd) ** t, rel=1e-13)
        assert lr_tilde == pytest.approx(lr * (1 - lr * wd) ** (-2 * t + 1), rel=1e-13)


def test_first_momentum_step_ignores_dampening_like_torch_sgd():
    p = Phantom(SGDHyper(momentum=0.9, dampening=0.3, weight_decay=0.01))
    p.step(0.1)
    assert p.s == pytest.approx(1 - 0.1 * 0.01)  # buf = d_p on the first step
    p.step(0.1)
    buf = 0.9 * 0.01 + 0.7 * 0.01 * (1 - 1e-3)
    assert p.s == pytest.approx(1 - 1e-3 - 0.1 * buf, rel=1e-15)


@pytest.mark.parametrize("bad", [SGDHyper(momentum=1.0), SGDHyper(momentum=-0.1), SGDHyper(weight_decay=-1),
                                 SGDHyper(weight_decay=math.inf)])
def test_bad_hyperparameters_name_the_value(bad):
    with pytest.raises(ValueError, match="momentum|weight_decay"):
        Phantom(bad)
