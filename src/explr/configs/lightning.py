"""Lightning CLI configs: `optimizer` / `lr_scheduler` as `class_path` + `init_args`, `trainer.*`, `data.*`.

Semantics (LightningCLI): the auto-configured scheduler is returned as `[optimizer], [lr_scheduler]`,
so Lightning steps it once per **epoch** (interval "epoch"); torch milestones/T_max therefore count
epochs. `trainer.max_steps` counts optimizer steps and stops training first when it is shorter;
`accumulate_grad_batches` k makes one optimizer step per k batches (ceil per epoch).
"""
from __future__ import annotations

from typing import Any

from explr.configs.adapter import ReadOptions
from explr.configs.hydra import targets
from explr.configs.source import ConfigSource, KeyPath
from explr.configs.torch_plan import Training, build_torch_plan
from explr.configs.torch_spec import ClassSpec
from explr.configs.training_keys import averaging_path, training_facts
from explr.errors import ConfigError
from explr.plan import TrainingPlan

INTEGRATION = "explr.integrations.lightning"


def class_spec(source: ConfigSource, node: Any, path: KeyPath) -> ClassSpec:
    """A `{class_path, init_args}` mapping (or a bare class name string) as a ClassSpec."""
    if isinstance(node, str):
        return ClassSpec(node, {}, path, path)
    if not isinstance(node, dict) or "class_path" not in node:
        raise ConfigError(f"{source.where(path)}: expected `class_path:` (and `init_args:`) here")
    args = node.get("init_args") or {}
    if not isinstance(args, dict):
        raise ConfigError(f"{source.where(path + ('init_args',))}: init_args must be a mapping")
    return ClassSpec(str(node["class_path"]), args, path + ("init_args",), path + ("class_path",))


class LightningFormat:
    name = "lightning"

    def detect(self, source: ConfigSource) -> str | None:
        for key in ("optimizer", "lr_scheduler"):
            node = source.data.get(key)
            if isinstance(node, dict) and "class_path" in node:
                return f"has `{key}.class_path` (LightningCLI)"
        trainer = source.data.get("trainer")
        hydra_targets = next(targets(source.data), None) is not None
        if isinstance(trainer, dict) and {"model", "data"} & set(source.data) and not hydra_targets:
            return "has `trainer` with `model`/`data` sections (LightningCLI)"
        return None

    def read(self, source: ConfigSource, options: ReadOptions) -> TrainingPlan:
        if "optimizer" not in source.data:
            raise ConfigError(f"{source.path}: no `optimizer:` section; add one with class_path: torch.optim.SGD "
                              "and its init_args (lr, momentum, weight_decay)")
        optimizer = class_spec(source, source.data["optimizer"], ("optimizer",))
        scheduler = source.data.get("lr_scheduler")
        scheduler_spec = class_spec(source, scheduler, ("lr_scheduler",)) if scheduler is not None else None
        for spec in (optimizer, scheduler_spec):
            if spec and spec.target.startswith("explr."):
                raise ConfigError(f"{source.where(spec.target_path)}: this config is already converted; "
                                  "convert the original")
        training = _training(source, options)
        return build_torch_plan(source, self.name, optimizer, scheduler_spec, training,
                                lambda node, path: class_spec(source, node, path))

    def rewrite(self, converted) -> tuple[str, list[str]]:
        """lr_scheduler -> explr's TEXPScheduler (the optimizer stays as written), ExplrCallback added."""
        from explr.configs.rewrite import Rewriter
        from explr.configs.texp_args import si_init_args
        from explr.lr_schedule import schedule_args

        source, rewriter = converted.source, Rewriter(converted.source)
        scheduler = {"class_path": f"{INTEGRATION}.TEXPScheduler",
                     "init_args": {"schedule": schedule_args(converted.plan.lr), **si_init_args(converted)}}
        if "lr_scheduler" in source.data:
            rewriter.replace_value(("lr_scheduler",), scheduler)
        else:
            rewriter.add_key((), "lr_scheduler", scheduler)
        callback = {"class_path": f"{INTEGRATION}.ExplrCallback"}
        callbacks = source.get(("trainer", "callbacks"))
        if isinstance(callbacks, list) and callbacks and not callbacks.fa.flow_style():
            rewriter.append_item(("trainer", "callbacks"), callback)
        elif callbacks is not None:
            rewriter.replace_value(("trainer", "callbacks"), [*callbacks, callback])
        elif isinstance(source.data.get("trainer"), dict):
            rewriter.add_key(("trainer",), "callbacks", [callback])
        else:
            rewriter.add_key((), "trainer", {"callbacks": [callback]})
        return rewriter.text(), ["the scheduler is bound to the model by ExplrCallback on the first batch "
                                 "(explr.integrations.lightning)"]


def _training(source: ConfigSource, options: ReadOptions) -> Training:
    trainer = ("trainer",)
    data = ("data", "init_args") if source.has(("data", "init_args")) else ("data",)
    facts = training_facts(source, options, trainer=trainer, data=data,
                           dataset_hint=source.get(("data", "class_path")))
    max_steps = facts.number(trainer + ("max_steps",), int, -1)
    callbacks = source.get(trainer + ("callbacks",)) or []
    ema = averaging_path([(trainer + ("callbacks", i, "class_path"), c.get("class_path"))
                          for i, c in enumerate(callbacks) if isinstance(c, dict)])
    if ema:
        facts.paths["ema"] = ema
    return Training(
        iters_per_epoch=facts.iters_per_epoch, epochs=facts.number(trainer + ("max_epochs",), int, None),
        max_steps=max_steps if max_steps and max_steps > 0 else None, interval="epoch",
        precision=str(facts.number(trainer + ("precision",), str, "32")),
        grad_clip_norm=facts.clip_norm(trainer), ema=ema is not None, paths=facts.paths)


ADAPTER = LightningFormat()
