"""Shared pieces of the check tests: fixture models with their audit, and hand-built TrainingPlans."""
from __future__ import annotations

import functools

from explr.lr_schedule import LRSchedule
from explr.plan import DecayPolicy, TrainingPlan
from tests.conftest import FIXTURES

IPE = 391
DEMO_CONFIG = str(FIXTURES / "configs" / "demo" / "cifar10_step.yaml")


def model_path(name: str) -> str:
    return str(FIXTURES / "models" / f"{name}.py")


@functools.lru_cache(maxsize=None)
def audited(name: str):
    """(spec, AuditReport) of a fixture model; static audit only — the check's own audit path is tested by the CLI."""
    from explr.audit.api import audit
    from explr.load import load_model

    loaded = load_model(model_path(name))
    return model_path(name), audit(loaded.model, loaded.example_inputs, verify=False)


def plan(**changes) -> TrainingPlan:
    """CIFAR-10 step decay (lr 0.1, momentum 0.9, wd 5e-4, 160 epochs, x0.1 at 80/120) with `changes`."""
    lr = changes.pop("lr", LRSchedule(0.1, 160 * IPE, milestones=(80 * IPE, 120 * IPE)))
    values = dict(format="explr", path="inline-plan", optimizer="sgd", momentum=0.9, dampening=0.0, nesterov=False,
                  decay=DecayPolicy(5e-4), lr=lr, iters_per_epoch=IPE, epochs=160)
    values.update(changes)
    return TrainingPlan(**values)
