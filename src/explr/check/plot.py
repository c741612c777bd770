"""`--plot out.png`: what the blog's Figure 2 shows, for this check.

Left: both runs' training loss (and a probe output) overlapping step by step. Middle: the SI
weight norm ratio ||θ~||/||θ|| growing exponentially, measured and predicted (1/s_t). Right: the LR of
each param group on a log scale (original vs converted). matplotlib is the optional extra `plot`.
"""
from __future__ import annotations

from dataclasses import dataclass

from explr.check.report import TrajectoryReport
from explr.errors import ExplrError


@dataclass(frozen=True)
class Series:
    label: str
    x: list[int]
    y: list[float]
    style: str = "-"


def figure_series(report: TrajectoryReport) -> dict[str, list[Series]]:
    """The curves of each panel, independent of any plotting library."""
    steps = [r.step for r in report.records]
    panels: dict[str, list[Series]] = {
        "loss": [Series("original (weight decay)", steps, [r.loss_original for r in report.records]),
                 Series("converted (TEXP)", steps, [r.loss_converted for r in report.records], "--")],
        "weight norm": [],
        "learning rate": [],
    }
    measured = [(r.step, r.norm_ratio, r.predicted_ratio) for r in report.records if r.norm_ratio is not None]
    if measured:
        panels["weight norm"].append(Series("‖θ̃‖/‖θ‖ measured", [m[0] for m in measured], [m[1] for m in measured]))
        if all(m[2] is not None for m in measured):
            panels["weight norm"].append(Series("1/s_t predicted", [m[0] for m in measured],
                                                [m[2] for m in measured], "--"))
    for run, attr in (("original", "lrs_original"), ("converted", "lrs_converted")):
        for label in getattr(report.records[0], attr) if report.records else ():
            panels["learning rate"].append(Series(f"{run}: {label}", steps,
                                                  [getattr(r, attr)[label] for r in report.records],
                                                  "-" if run == "original" else "--"))
    return panels


def save_plot(report: TrajectoryReport, path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ExplrError("--plot needs matplotlib: pip install matplotlib (explr's plot extra)") from None
    panels = figure_series(report)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, (title, series) in zip(axes, panels.items()):
        for s in series:
            ax.plot(s.x, s.y, s.style, label=s.label)
        ax.set_title(title)
        ax.set_xlabel("step")
        if series:
            ax.legend(fontsize=8)
    axes[2].set_yscale("log")
    verdict = "match" if report.passed else "DIFFER"
    fig.suptitle(f"{report.model}: trajectories {verdict} (max rel. deviation {report.max_rel_deviation:.1e}, "
                 f"tolerance {report.tolerance:.0e})")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise ExplrError(f"--plot {path}: cannot write the image ({exc.strerror}); choose another path") from None
    finally:
        plt.close(fig)
