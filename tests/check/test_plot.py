"""--plot: loss overlap, deviation vs tolerance and noise floor (log), weight-norm growth, LR ratio η̃/η."""
from __future__ import annotations

import pytest

from explr.check.api import CheckOptions, check
from explr.check.plot import figure_series, reference_levels, save_plot
from tests.check.helpers import DEMO_CONFIG, audited


@pytest.fixture(scope="module")
def report():
    spec, audit_report = audited("resnet_cifar")
    return check(spec, DEMO_CONFIG, si=audit_report, options=CheckOptions(steps=8, batch_size=4))


def test_panels_hold_both_runs_the_deviation_the_growth_and_every_group_lr_ratio(report):
    panels = figure_series(report)
    original, converted = panels["loss"]
    assert original.y == pytest.approx(converted.y, rel=1e-10) and len(original.x) == 8  # overlapping curves
    (deviation,) = panels["deviation"]
    assert deviation.y == [max(r.rel_deviation, 1e-17) for r in report.records]
    measured, predicted = panels["weight norm"]
    assert measured.y == pytest.approx(predicted.y, rel=1e-12) and measured.y[-1] > measured.y[0] > 1.0
    ratios = {s.label: s for s in panels["learning rate"]}
    si = ratios["SI: wd 0 (was 0.0005)"]  # the decay the group trains with, and what it replaced
    assert si.y[-1] > si.y[0] > 1.0  # η̃/η grows: exponential in each phase
    assert set(ratios["other: wd 0.0005"].y) == {1.0}  # non-SI groups keep their LR and decay


def test_deviation_panel_lines_are_the_tolerance_and_the_noise_floor(report):
    assert [lv.y for lv in reference_levels(report)] == [report.tolerance]  # float64 CPU: no noise floor
    spec, audit_report = audited("resnet_cifar")
    noisy = check(spec, DEMO_CONFIG, si=audit_report, options=CheckOptions(steps=4, batch_size=4, dtype="float32"))
    assert [lv.y for lv in reference_levels(noisy)] == [noisy.tolerance, noisy.noise_floor]
    assert [s.label for s in figure_series(noisy)["deviation"]][1].startswith("noise")


def test_save_plot_writes_a_png_without_offset_tick_labels(report, tmp_path, monkeypatch):
    import matplotlib.figure

    texts = []
    original_savefig = matplotlib.figure.Figure.savefig

    def savefig(fig, *args, **kwargs):
        fig.canvas.draw()
        texts.extend(ax.yaxis.get_offset_text().get_text() for ax in fig.axes)
        return original_savefig(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    out = tmp_path / "fig.png"
    save_plot(report, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(texts) == 4 and not any(texts)  # no "+1" / "1e-3" offsets on any axis


def test_without_matplotlib_plotting_is_a_clear_error(report, tmp_path, monkeypatch):
    import sys

    from explr.errors import ExplrError

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an install without the extra looks like
    with pytest.raises(ExplrError, match=r"--plot needs matplotlib: pip install matplotlib"):
        save_plot(report, str(tmp_path / "fig.png"))
    assert not (tmp_path / "fig.png").exists()
