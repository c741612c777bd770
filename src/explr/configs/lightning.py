"""Lightning CLI configs: `optimizer` / `lr_scheduler` as `class_path` + `init_args`, `trainer.*`, `data.*`.

Semantics (LightningCLI): the auto-configured scheduler is returned as `[optimizer], [lr_scheduler]`,
so Lightning steps it once per **epoch** (interval "epoch"); torch milestones/T_max therefore count
epochs. `trainer.max_steps` counts optimizer steps and stops training first when it is shorter;
`accumulate_grad_batches` k makes one optimizer step per k batches (ceil per epoch).
"""
from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedSeq

from explr.configs.adapter import ReadOptions
from explr.configs.hydra import targets
from explr.configs.source import ConfigSource, KeyPath
from explr.configs.torch_plan import Training, build_torch_plan
from explr.configs.torch_spec import ClassSpec, infer_class
from explr.configs.training_keys import averaging_path, clipping_switch, training_facts
from explr.errors import ConfigError
from explr.plan import TrainingPlan

INTEGRATION = "explr.integrations.lightning"
LIGHTNING_DEFAULT_EPOCHS = 1000  # lightning.pytorch.Trainer: max_epochs None and max_steps -1 -> 1000 epochs


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


# (config key, ReadOptions field of the class the script may fix, its flag, torch_spec kind)
SECTIONS = (("optimizer", "optimizer_class", "--optimizer-class", "optimizer"),
            ("lr_scheduler", "scheduler_class", "--scheduler-class", "LR scheduler"))


def section_spec(source: ConfigSource, options: ReadOptions, key: str) -> tuple[ClassSpec, str | None]:
    """The spec of `optimizer` / `lr_scheduler`, and a note when its class was inferred from its arguments.

    A script that fixes the class (`parser.add_optimizer_args(torch.optim.SGD)`) makes the section hold only
    init args; the class then comes from the flag, or from the arguments when one torch class alone fits.
    """
    _, field, flag, kind = next(row for row in SECTIONS if row[0] == key)
    node, path, fixed = source.data[key], (key,), getattr(options, field)
    if isinstance(node, str) or isinstance(node, dict) and "class_path" in node:
        spec = class_spec(source, node, path)
        if fixed and fixed.rsplit(".", 1)[-1] != spec.class_name:
            raise ConfigError(f"{source.where(spec.target_path)}: class_path {spec.target} contradicts {flag} {fixed}; "
                              "drop one")
        return spec, None
    if not isinstance(node, dict):
        raise ConfigError(f"{source.where(path)}: {key} must be a mapping of init args or class_path + init_args")
    note = None
    if not fixed:
        fixed, note = infer_class(source, dict(node), path, kind, flag)
    return ClassSpec(fixed, dict(node), path, path), note


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
        optimizer, opt_note = section_spec(source, options, "optimizer")
        scheduler_spec, sched_note = section_spec(source, options, "lr_scheduler") \
            if source.data.get("lr_scheduler") is not None else (None, None)
        for spec in (optimizer, scheduler_spec):
            if spec and spec.target.startswith("explr."):
                raise ConfigError(f"{source.where(spec.target_path)}: this config is already converted; "
                                  "convert the original")
        training = _training(source, options)
        plan = build_torch_plan(source, self.name, optimizer, scheduler_spec, training, options)
        plan.class_notes = tuple((fact, note) for fact, note in (("optimizer", opt_note), ("scheduler", sched_note))
                                 if note)
        return plan

    def rewrite(self, converted) -> tuple[str, list[str]]:
        """lr_scheduler -> explr's TEXPScheduler (the optimizer stays as written), ExplrCallback added."""
        from explr.configs.rewrite import Rewriter
        from explr.configs.texp_args import si_init_args
        from explr.lr_schedule import schedule_args

        source, rewriter = converted.source, Rewriter(converted.source)
        init_args = {"schedule": schedule_args(converted.plan.lr), **si_init_args(converted)}
        scheduler = {"class_path": f"{INTEGRATION}.TEXPScheduler", "init_args": init_args}
        notes = ["the scheduler is bound to the model by ExplrCallback on the first batch "
                 "(explr.integrations.lightning)"]
        fixed = isinstance(source.data.get("lr_scheduler"), dict) and "class_path" not in source.data["lr_scheduler"]
        if fixed:  # the script's parser.add_lr_scheduler_args(...) names the class: only init args go here
            scheduler = init_args
            notes.append(f"your script fixes the scheduler class: make it "
                         f"parser.add_lr_scheduler_args({INTEGRATION}.TEXPScheduler)")
        if "lr_scheduler" in source.data:
            rewriter.replace_value(("lr_scheduler",), scheduler)
        else:
            rewriter.add_key((), "lr_scheduler", scheduler)
        callback = {"class_path": f"{INTEGRATION}.ExplrCallback"}
        callbacks = source.get(("trainer", "callbacks"))
        if isinstance(callbacks, CommentedSeq) and callbacks and not callbacks.fa.flow_style():  # a block list
            rewriter.append_item(("trainer", "callbacks"), callback)
        elif callbacks is not None:
            rewriter.replace_value(("trainer", "callbacks"), [*callbacks, callback])
        elif isinstance(source.data.get("trainer"), dict):
            rewriter.add_key(("trainer",), "callbacks", [callback])
        else:
            rewriter.add_key((), "trainer", {"callbacks": [callback]})
        return rewriter.text(), notes


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
    clip = clipping_switch(source, trainer)
    if clip:
        facts.paths["grad_clip_key"] = clip
    epochs = facts.number(trainer + ("max_epochs",), int, None)
    if epochs is None and not (max_steps and max_steps > 0):
        epochs = LIGHTNING_DEFAULT_EPOCHS  # what the Trainer runs when neither length is set
    return Training(
        iters_per_epoch=facts.iters_per_epoch, epochs=epochs,
        max_steps=max_steps if max_steps and max_steps > 0 else None, interval="epoch",
        precision=str(facts.number(trainer + ("precision",), str, "32")),
        grad_clip_norm=facts.clip_norm(trainer), grad_clip_key=".".join(map(str, clip)) if clip else None,
        ema=ema is not None, paths=facts.paths)


ADAPTER = LightningFormat()
