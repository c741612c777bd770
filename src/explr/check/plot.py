"""`--plot out.png`: the evidence of the check, in four panels.

Training loss of both runs (overlapping) | output deviation per step on a log scale, with the tolerance
and the measured noise floor | SI weight-norm ratio ‖θ̃‖/‖θ‖, measured and predicted 1/s_t | the LR
ratio η̃/η of each converted param group, labelled with the weight decay it actually trains with (the
exponential growth is invisible when η̃ is drawn over η: a few percent on a log axis spanning decades).
Ratios are drawn without matplotlib's "+1" offset tick labels. matplotlib is the optional extra `plot`.
"""
from __future__ import annotations

from dataclasses import dataclass

from explr.check.report import TrajectoryReport
from explr.errors import ExplrError

LOG_FLOOR = 1e-17  # an exactly-zero deviation is drawn here (a log axis has no 0)


@dataclass(frozen=True)
class Series:
    label: str
    x: list[int]
    y: list[float]
    style: str = "-"


@dataclass(frozen=True)
class Level:
    """A horizontal reference line."""

    label: str
    y: float
    style: str


def _deviation(report: TrajectoryReport, steps: list[int]) -> list[Series]:
    series = [Series("converted vs original", steps, [max(r.rel_deviation, LOG_FLOOR) for r in report.records])]
    if report.records and report.records[0].noise is not None:
        series.append(Series("noise: original vs 1-ulp perturbed", steps,
                             [max(r.noise or 0.0, LOG_FLOOR) for r in report.records], ":"))
    return series


def _lr_ratios(report: TrajectoryReport, steps: list[int]) -> list[Series]:
    """η̃/η per converted group (every group of the check follows one original LR η_t; 0/0 during warmup
    from 0 is left out)."""
    out = []
    for label in report.records[0].lrs_converted if report.records else ():
        points = [(r.step, r.lrs_converted[label] / _original_lr(r)) for r in report.records if _original_lr(r) > 0]
        out.append(Series(f"{label}", [p[0] for p in points], [p[1] for p in points],
                          "-" if label.startswith("SI") else "--"))
    return out


def _original_lr(record) -> float:
    return next(iter(record.lrs_original.values()), 0.0)


def figure_series(report: TrajectoryReport) -> dict[str, list[Series]]:
    """The curves of each panel, independent of any plotting library."""
    steps = [r.step for r in report.records]
    panels: dict[str, list[Series]] = {
        "loss": [Series("original (weight decay)", steps, [r.loss_original for r in report.records]),
                 Series("converted (TEXP)", steps, [r.loss_converted for r in report.records], "--")],
        "deviation": _deviation(report, steps),
        "weight norm": [],
        "learning rate": _lr_ratios(report, steps),
    }
    measured = [(r.step, r.norm_ratio, r.predicted_ratio) for r in report.records if r.norm_ratio is not None]
    if measured:
        panels["weight norm"].append(Series("‖θ̃‖/‖θ‖ measured", [m[0] for m in measured], [m[1] for m in measured]))
        predicted = [m[2] for m in measured if m[2] is not None]
        if len(predicted) == len(measured):
            panels["weight norm"].append(Series("1/s_t predicted", [m[0] for m in measured], predicted, "--"))
    return panels


def reference_levels(report: TrajectoryReport) -> list[Level]:
    """The deviation panel's lines: the tolerance, and the noise floor when one was measured."""
    levels = [Level(f"tolerance {report.tolerance:.0e}", report.tolerance, "--")]
    if report.noise_floor is not None:
        levels.append(Level(f"noise floor {report.noise_floor:.1e}", report.noise_floor, ":"))
    return levels


TITLES = {"loss": "training loss", "deviation": "output deviation ‖ỹ−y‖/‖y‖ (log)",
          "weight norm": "SI weight norm ratio ‖θ̃‖/‖θ‖", "learning rate": "LR ratio η̃/η (converted / original)"}


def _draw(axes, report: TrajectoryReport) -> None:
    from matplotlib.ticker import ScalarFormatter

    panels = figure_series(report)
    for ax, (key, series) in zip(axes, panels.items()):
        for s in series:
            ax.plot(s.x, s.y, s.style, label=s.label)
        if key == "deviation":
            ax.set_yscale("log")
            for level in reference_levels(report):
                ax.axhline(level.y, linestyle=level.style, color="red" if "tolerance" in level.label else "gray",
                           label=level.label)
            if report.noise_floor is None:
                ax.text(0.02, 0.02, "no noise floor: float64 CPU kernels are deterministic", fontsize=8,
                        transform=ax.transAxes, color="gray")
        else:
            formatter = ScalarFormatter(useOffset=False)
            formatter.set_scientific(False)
            ax.yaxis.set_major_formatter(formatter)
        ax.set_title(TITLES[key], fontsize=10)
        ax.set_xlabel("step")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)


def save_plot(report: TrajectoryReport, path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ExplrError("--plot needs matplotlib: pip install matplotlib (explr's plot extra)") from None
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    _draw(axes.flat, report)
    verdict = {"pass": "match", "fail": "DIFFER", "inconclusive": "INCONCLUSIVE"}[report.outcome]
    fig.suptitle(f"{report.model}: trajectories {verdict} (max rel. deviation {report.max_rel_deviation:.1e}, "
                 f"tolerance {report.tolerance:.0e}; {report.steps} steps, {report.dtype})")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise ExplrError(f"--plot {path}: cannot write the image ({exc.strerror}); choose another path") from None
    finally:
        plt.close(fig)
