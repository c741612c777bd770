"""--plot: the blog's Figure 2 panels (loss overlap, weight-norm growth, LR on log scale)."""
from __future__ import annotations

import pytest

from explr.check.api import CheckOptions, check
from explr.check.plot import figure_series, save_plot
from tests.check.helpers import DEMO_CONFIG, audited


@pytest.fixture(scope="module")
def report():
    spec, audit_report = audited("resnet_cifar")
    return check(spec, DEMO_CONFIG, si=audit_report, options=CheckOptions(steps=8, batch_size=4))


def test_panels_hold_both_runs_the_growth_and_every_group_lr(report):
    panels = figure_series(report)
    original, converted = panels["loss"]
    assert original.y == pytest.approx(converted.y, rel=1e-10) and len(original.x) == 8  # overlapping curves
    measured, predicted = panels["weight norm"]
    assert measured.y == pytest.approx(predicted.y, rel=1e-12) and measured.y[-1] > measured.y[0] > 1.0
    labels = [s.label for s in panels["learning rate"]]
    assert any(label.startswith("converted: SI") for label in labels) and any(label.startswith("original") for label in labels)


def test_save_plot_writes_a_png(report, tmp_path):
    pytest.importorskip("matplotlib", reason="plotting is the optional plot extra")
    out = tmp_path / "fig.png"
    save_plot(report, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_plotting_is_a_clear_error(report, tmp_path, monkeypatch):
    import sys

    from explr.errors import ExplrError

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an install without the extra looks like
    with pytest.raises(ExplrError, match=r"--plot needs matplotlib: pip install matplotlib"):
        save_plot(report, str(tmp_path / "fig.png"))
    assert not (tmp_path / "fig.png").exists()
