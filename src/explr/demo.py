"""`explr demo`: audit -> convert -> check on the bundled PreResNet-32 and CIFAR-10 step-decay config.

The whole pipeline in about a minute on 2 CPU cores: which parameters are scale-invariant, the exact
TEXP schedule (the blog's ×1.481 per epoch), and two short training runs — weight decay vs TEXP —
whose outputs agree to round-off. The check runs on synthetic CIFAR-shaped data with a small batch
(the config's batch size 128 only sets the 391 iterations per epoch), so it fits the minute.
"""
from __future__ import annotations

import contextlib
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager

from explr.errors import ExplrError
from explr.wording import plural

ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL = ROOT / "fixtures" / "models" / "preresnet32.py"
DEMO_CONFIG = ROOT / "fixtures" / "configs" / "demo" / "cifar10_step.yaml"
DIFF_LINES = 6  # lines of the converted config's diff shown


@dataclass(frozen=True)
class DemoOptions:
    steps: int = 120
    batch_size: int = 16

    def __post_init__(self) -> None:  # bad values fail before the audit and convert steps run
        from explr.check.api import CheckOptions

        CheckOptions(steps=self.steps, batch_size=self.batch_size)


def _require_fixtures() -> None:
    missing = [str(p) for p in (DEMO_MODEL, DEMO_CONFIG) if not p.is_file()]
    if missing:
        raise ExplrError(f"explr demo needs the bundled fixtures of a source checkout; missing {', '.join(missing)}")


def _audit_step(out: Callable[[str], None]):
    from explr.audit.api import audit
    from explr.load import load_model

    loaded = load_model(str(DEMO_MODEL))
    report = audit(loaded.model, loaded.example_inputs, verify=True, model_name=str(DEMO_MODEL),
                   inputs_note=loaded.inputs_note)
    out(f"[1/3] explr audit {DEMO_MODEL.name}")
    out(f"      {report.summary()}; numeric confirmation: {report.verification.status}")
    return report


def _convert_step(out: Callable[[str], None], si_names: list[str]):
    from explr.configs.convert import convert
    from explr.configs.write import converted_output

    converted = convert(str(DEMO_CONFIG), si=si_names)
    plan, analysis = converted.plan, converted.analysis
    out(f"[2/3] explr convert {DEMO_CONFIG.name}  ({converted.detected.name} format, "
        f"{'exact' if converted.exact else 'approximate'})")
    out(f"      lr {plan.lr.base_lr:g}, momentum {plan.momentum:g}, weight decay {plan.weight_decay:g}, "
        f"{plan.iters_per_epoch} iterations/epoch")
    out(f"      TEXP: SI weights lose weight decay, their LR grows ×{analysis.growth_per_epoch:.4f} per epoch "
        "(the blog's 1.481)")
    ipe = plan.iters_per_epoch
    assert ipe is not None, "convert always resolves the iterations per epoch"
    for p in analysis.phases:
        growth = f"×{p.growth_per_epoch:.4f}/epoch" if p.growth_per_epoch is not None else "varies"
        out(f"      epochs {p.start_iter / ipe:g}-{p.end_iter / ipe:g}: LR {p.base_lr:.4g} -> converted "
            f"{p.converted_lr_start:.4g} .. {p.converted_lr_end:.4g} ({growth})")
    diff = list(difflib.unified_diff(DEMO_CONFIG.read_text().splitlines(),
                                     converted_output(converted).text.splitlines(), lineterm="", n=0))[2:]
    shown = [line for line in diff if not line.startswith("@@")]
    for line in shown[:DIFF_LINES]:
        out(f"      {line}")
    if len(shown) > DIFF_LINES:
        out(f"      ... ({len(shown) - DIFF_LINES} more changed lines)")
    return converted


def run_demo(options: DemoOptions = DemoOptions(), out: Callable[[str], None] = print,
             progress: Callable[[], ContextManager] = contextlib.nullcontext,
             log: Callable[[str], None] = lambda s: None):
    """Print the three stages through `out`; return the check's TrajectoryReport.

    `progress()` gives a context manager yielding an `on_step(t, steps)` callback (or None) for the
    training stage, so a progress bar is live only while nothing is printed.
    """
    from explr.check.api import CheckOptions, check
    from explr.check.render import render_text

    _require_fixtures()
    report = _audit_step(out)
    _convert_step(out, report.si_names)
    out(f"[3/3] explr check: {options.steps} steps of both runs (weight decay vs TEXP), synthetic data, "
        f"batch {options.batch_size}, float64")
    with progress() as on_step:
        result = check(str(DEMO_MODEL), str(DEMO_CONFIG), si=report, on_step=on_step, log=log,
                       options=CheckOptions(steps=options.steps, batch_size=options.batch_size, device="cpu"))
    out(render_text(result).rstrip())
    verdict = "match" if result.passed else "DIFFER"
    out(f"trajectories {verdict}: max relative output deviation {result.max_rel_deviation:.1e} "
        f"(tolerance {result.tolerance:.0e}) over {result.steps} steps through {plural(result.phases_hit, 'LR phase')}; "
        f"TEXP LR growth ×{result.growth_per_epoch:.3f} per epoch")
    return result
