"""Hydra `_target_` configs (a composed config, e.g. the output of `python train.py --cfg job`).

The optimizer is the mapping whose `_target_` is a torch.optim optimizer (usually `_partial_: true`,
called later with `params=`), the scheduler the one whose `_target_` is in torch.optim.lr_scheduler.
User code steps the scheduler; the common Lightning+Hydra layout returns it with interval "epoch",
so that is the default, stated in the summary: a sibling `interval: step` key or `--scheduler-interval`
overrides it. Keys starting with `_` are Hydra's own, not constructor arguments.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

from explr.configs.adapter import ReadOptions
from explr.configs.source import ConfigSource, KeyPath
from explr.configs.torch_plan import Training, build_torch_plan
from explr.configs.torch_spec import ClassSpec
from explr.configs.training_keys import averaging_path, clipping_switch, training_facts
from explr.errors import ConfigError
from explr.plan import TrainingPlan

INTEGRATION = "explr.integrations.hydra"
_CALL_ARGS = {"params", "optimizer"}  # filled in by user code at call time
INTERVALS = ("epoch", "step")


def target_spec(source: ConfigSource, node: Any, path: KeyPath) -> ClassSpec:
    if not isinstance(node, dict) or "_target_" not in node:
        raise ConfigError(f"{source.where(path)}: expected a mapping with `_target_:` here")
    args = {k: v for k, v in node.items() if not str(k).startswith("_") and k not in _CALL_ARGS}
    return ClassSpec(str(node["_target_"]), args, path, path + ("_target_",))


def targets(node: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, dict]]:
    """Every mapping with a `_target_`, depth first, in file order."""
    items: Iterable[tuple[Any, Any]]  # (key or index, child)
    if isinstance(node, dict):
        if "_target_" in node:
            yield path, node
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, child in items:
        yield from targets(child, path + (key,))


def _foreign_scheduler(target: str) -> bool:
    """A scheduler class from outside torch (timm, a project's own): explr cannot read its LR schedule."""
    lowered = target.lower()
    return "sched" in lowered and not target.startswith(("torch.optim.lr_scheduler.", "explr."))


def find_torch_nodes(source: ConfigSource) -> tuple[KeyPath | None, KeyPath | None]:
    """Key paths of the (optimizer, scheduler) mappings: the first of each (a SequentialLR before its children).

    A scheduler from another library is refused, never skipped: reading the optimizer alone would
    silently give a constant LR."""
    optimizer = scheduler = None
    for path, node in targets(source.data):
        target = str(node["_target_"])
        if _foreign_scheduler(target):
            raise ConfigError(f"{source.where(path + ('_target_',))}: scheduler {target} is not a torch.optim."
                              "lr_scheduler class; explr reads the LR schedule of Hydra configs from torch schedulers "
                              "(write it as one, e.g. torch.optim.lr_scheduler.MultiStepLR, or convert the plan by "
                              "hand)")
        if target.startswith("torch.optim.lr_scheduler.") and scheduler is None:
            scheduler = path
        elif target.startswith("torch.optim.") and not target.startswith("torch.optim.lr_scheduler") \
                and optimizer is None:
            optimizer = path
    return optimizer, scheduler


def _find_key(node: Any, key: str, path: KeyPath = ()) -> KeyPath | None:
    if isinstance(node, dict):
        if key in node:
            return path + (key,)
        for k, child in node.items():
            found = _find_key(child, key, path + (k,))
            if found:
                return found
    return None


class HydraFormat:
    name = "hydra"

    def detect(self, source: ConfigSource) -> str | None:
        for path, node in targets(source.data):
            target = str(node["_target_"])
            if target.startswith("torch.optim.") or target.startswith(INTEGRATION):
                return f"has `{'.'.join(map(str, path + ('_target_',)))}: {target}` (Hydra)"
        return None

    def read(self, source: ConfigSource, options: ReadOptions) -> TrainingPlan:
        for path, node in targets(source.data):
            if str(node["_target_"]).startswith(INTEGRATION):
                raise ConfigError(f"{source.where(path + ('_target_',))}: this config is already converted; "
                                  "convert the original")
        opt_path, sched_path = find_torch_nodes(source)
        if opt_path is None:
            raise ConfigError(f"{source.path}: no mapping with `_target_: torch.optim.<Optimizer>`; add the optimizer "
                              "(e.g. _target_: torch.optim.SGD, _partial_: true, lr: ...)")
        optimizer = target_spec(source, source.get(opt_path), opt_path)
        scheduler = target_spec(source, source.get(sched_path), sched_path) if sched_path is not None else None
        return build_torch_plan(source, self.name, optimizer, scheduler, _training(source, options, sched_path),
                                options)


    def rewrite(self, converted) -> tuple[str, list[str]]:
        """The scheduler node -> explr's TEXPScheduler (the optimizer stays as written); a callback when the
        config has a Lightning-style `callbacks` mapping, else a note on the one line that binds it."""
        from explr.configs.rewrite import Rewriter
        from explr.configs.texp_args import si_init_args
        from explr.lr_schedule import schedule_args

        source, rewriter = converted.source, Rewriter(converted.source)
        opt_path, sched_path = find_torch_nodes(source)
        assert opt_path is not None, "read() refuses a config without an optimizer"
        node: dict[str, Any] = {"_target_": f"{INTEGRATION}.TEXPScheduler"}
        original = source.get(sched_path) if sched_path else source.get(opt_path)
        if original.get("_partial_") is not None:
            node["_partial_"] = original["_partial_"]
        node.update({"schedule": schedule_args(converted.plan.lr), **si_init_args(converted)})
        notes = []
        if sched_path is not None:
            rewriter.replace_value(sched_path, node)
        else:
            rewriter.add_key(opt_path[:-1], "scheduler", node)
            notes.append(f"added {'.'.join(map(str, opt_path[:-1] + ('scheduler',)))}: the training code must build it "
                         "with scheduler(optimizer=optimizer)")
        if isinstance(source.data.get("callbacks"), dict):
            rewriter.add_key(("callbacks",), "explr_texp", {"_target_": f"{INTEGRATION}.ExplrCallback"})
            notes.append("callbacks.explr_texp binds the scheduler to the model on the first batch")
        else:
            notes.append("bind the scheduler once before training: scheduler.bind(model, example_inputs)")
        return rewriter.text(), notes


def _interval(source: ConfigSource, options: ReadOptions, sched_path: KeyPath | None) -> tuple[str, KeyPath | None]:
    if options.scheduler_interval:
        return options.scheduler_interval, None
    if sched_path is None:
        return "step", None
    for key in ("interval", "scheduler_interval"):
        path = sched_path[:-1] + (key,)
        value = source.get(path)
        if value is not None:
            if value not in INTERVALS:
                raise ConfigError(f"{source.where(path)}: {key}={value!r} must be one of {', '.join(INTERVALS)}")
            return value, path
    return "epoch", None


def _training(source: ConfigSource, options: ReadOptions, sched_path: KeyPath | None) -> Training:
    trainer = _find_key(source.data, "trainer") or ("trainer",)
    data = next((p for p in (_find_key(source.data, k) for k in ("data", "datamodule")) if p), ("data",))
    facts = training_facts(source, options, trainer=trainer, data=data, dataset_hint=source.get(data + ("_target_",)))
    epochs_path = trainer + ("max_epochs",) if source.has(trainer + ("max_epochs",)) else \
        _find_key(source.data, "max_epochs") or _find_key(source.data, "epochs") or trainer + ("max_epochs",)
    max_steps = facts.number(trainer + ("max_steps",), int, -1)
    interval, interval_path = _interval(source, options, sched_path)
    if interval_path:
        facts.paths["scheduler_interval"] = interval_path
    clip = clipping_switch(source, trainer)
    if clip:
        facts.paths["grad_clip_key"] = clip
    ema = averaging_path([(path + ("_target_",), node["_target_"]) for path, node in targets(source.data)])
    if ema:
        facts.paths["ema"] = ema
    return Training(
        iters_per_epoch=facts.iters_per_epoch, epochs=facts.number(epochs_path, int, None),
        max_steps=max_steps if max_steps and max_steps > 0 else None, interval=interval,
        precision=str(facts.number(trainer + ("precision",), str, "32")),
        grad_clip_norm=facts.clip_norm(trainer), grad_clip_key=".".join(map(str, clip)) if clip else None,
        ema=ema is not None, paths=facts.paths)


ADAPTER = HydraFormat()
