"""The one table of rules, with their documentation (ruff style: what / why / example / fix).

Codes are stable and never reused: EXP1xx model (audit), EXP2xx config, EXP3xx lock/baseline.
Add a rule by appending a row; retire one by keeping its row (its code must never come back).
`docs/rules.md` is generated from this table (explr.rules.docs) and a test keeps them equal.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from explr.findings import Severity
from explr.rules.examples import EXAMPLES


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    name: str  # kebab-case
    severity: Severity  # default severity of its findings
    summary: str  # one line
    what_it_does: str = ""
    why_bad: str = ""
    example: str = ""  # triggers the rule: a model file (EXP1xx, EXP3xx) or an explr-format config (EXP2xx)
    how_to_fix: str = ""
    valid_example: str = ""  # the fixed version, which does not trigger it (explr.rules.examples)


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

_TABLE = [
    # ---- model rules (facts of an AuditReport) -------------------------------------------------
    Rule("EXP101", "no-normalization", _W, "No parameter is scale-invariant: nothing to convert.",
         "Reports a model in which no parameter is scale-invariant, and says why (no normalization layer, "
         "or every parameter reaches the output unnormalized or sits in an opaque part).",
         "The exponential-LR conversion applies only to scale-invariant parameters. Without any, "
         "`explr convert` has nothing to change and weight decay keeps its usual meaning.",
         "",
         "Nothing to fix if the model is meant to be unnormalized; otherwise add BatchNorm/LayerNorm "
         "after the layers whose scale should not matter (e.g. conv -> BN -> ReLU)."),
    Rule("EXP102", "bias-before-norm", _I, "A bias right before a normalization has no effect.",
         "Finds bias parameters that a following normalization cancels (a per-channel bias before "
         "BatchNorm or InstanceNorm).",
         "In train mode the normalization subtracts the per-channel batch mean, which removes the bias "
         "exactly: it has no effect on the output and a zero gradient. Scaling it changes nothing, so the "
         "audit reports it scale-invariant (inert), and weight decay on it is harmless but pointless; it "
         "only wastes memory and optimizer state.",
         "",
         "Build the layer with `bias=False`; the normalization's own beta plays its role."),
    Rule("EXP103", "joint-only-si", _I, "Parameters are scale-invariant only jointly and must share one schedule.",
         "Lists groups of parameters that are scale-invariant only together: scaling all of them by the "
         "same factor leaves the output unchanged, scaling one alone does not. A group that is exactly one "
         "normalization's affine pair is reported by EXP106 instead.",
         "A joint group must be converted as a whole: all members on the same converted LR and no weight "
         "decay. Putting only part of a group in the converted param group breaks the equivalence.",
         "",
         "Keep every member in the same param group; `explr.param_groups(model, report)` does this. "
         "Nothing to change in the model."),
    Rule("EXP104", "opaque-module", _W,
         "Part of the model could not be captured; its parameters are treated as not SI.",
         "Reports submodules that torch.fx could not trace (data-dependent control flow, unsupported "
         "Python); their parameters are conservatively marked not scale-invariant.",
         "Parameters in an opaque part keep weight decay, so the conversion covers less of the model "
         "than it could, and facts inside it (normalizations, biases) are not checked.",
         "",
         "Make the module traceable (replace data-dependent Python branches with tensor ops such as "
         "torch.where), or accept that its parameters stay on the original schedule."),
    Rule("EXP105", "unknown-op", _W, "An op without a transfer rule; its inputs are conservatively constrained.",
         "Reports graph ops that the homogeneity analysis has no transfer rule for; every input of such "
         "an op is constrained to degree 0 (not scaled).",
         "The audit never guesses: parameters feeding an unknown op are not scale-invariant even when "
         "they would be, so the conversion may cover less than it could.",
         "",
         "Nothing is wrong with the model. If the op is positively homogeneous (or a normalization), "
         "open an issue with the op name so a transfer rule can be added."),
    Rule("EXP106", "bn-affine-grows", _I,
         "Normalization affine parameters are SI and will grow exponentially after conversion.",
         "Finds normalization affine parameters (gamma, beta) that are scale-invariant, e.g. BN affine "
         "followed by ReLU -> conv -> BN. After conversion they train with the exponentially growing LR.",
         "Their norm grows like 1/s_t, exactly as the theory predicts; that is harmless in function space "
         "but makes them large numbers in float32 over long runs, and Li & Arora froze them in their "
         "experiments.",
         "",
         "Either freeze them as the paper did (`bn.weight.requires_grad_(False); bn.bias.requires_grad_(False)`, "
         "or `affine=False`) and re-run the audit, or keep them converted and enable the runtime's "
         "renormalization (`explr.TEXP(..., renormalize=(low, high))`) so their magnitude stays bounded."),
    Rule("EXP107", "head-keeps-weight-decay", _I, "Trainable non-SI parameters (e.g. the head) stay on weight decay.",
         "Lists trainable parameters that reach the model output without a normalization in between "
         "(typically the classifier head).",
         "They are not scale-invariant, so the conversion leaves them on the original LR and weight decay. "
         "That is exact, but it means the run still depends on weight decay for them.",
         "",
         "Nothing to fix. Keep their original param group (explr.param_groups does), or fix the head as "
         "the paper did if all parameters should follow one exponential schedule."),
    Rule("EXP108", "large-norm-eps", _W, "Normalization eps is large relative to the activations' variance.",
         "Compares each normalization's eps with the variance of its input recorded during the audit "
         "(when recorded); fires when eps / variance exceeds 1e-3.",
         "Scale invariance holds up to a relative error of about eps / variance. When the converted weights "
         "change scale, a large eps makes the converted run drift away from the original.",
         "",
         "Lower eps (the default 1e-5 is usually fine), or scale the layer's input up."),
    Rule("EXP109", "verification-failed", _E, "The numeric scaling test contradicts the static verdict.",
         "The audit scales the claimed scale-invariant set by random factors in float64 and compares "
         "train-mode outputs; this fires when an output changes or the scaled model fails to run. The "
         "refuted claims are withdrawn (with every group whose invariance depended on them; the "
         "reason reads \"refuted numerically: ...\"), so the report, the lock file and param_groups "
         "carry only what the confirmation confirmed.",
         "The static analysis was wrong about this model: a parameter that is called scale-invariant but "
         "is not would silently change the training run after conversion.",
         "a Python branch on a weight's value that graph capture could not see",
         "The withdrawn parameters keep their original schedule, so converting is safe; report the model "
         "(the finding names the culprit group) so the analysis can learn the pattern."),
    Rule("EXP110", "eval-mode-only", _I, "Scale invariance holds in train mode only (BatchNorm running statistics).",
         "Notes that BatchNorm in eval mode uses running statistics, which are not scale-invariant.",
         "Running statistics average activations of different scales over the run, so evaluation after "
         "conversion differs unless the statistics are recomputed.",
         "",
         "Recompute BatchNorm statistics (a pass over training data in train mode without gradient "
         "updates) before evaluating."),
    # ---- config rules (facts of a TrainingPlan) ------------------------------------------------
    Rule("EXP201", "nesterov", _E, "Nesterov momentum has no exact exponential-LR equivalent.",
         "Reports SGD with `nesterov: true`.",
         "Nesterov's extra gradient term would need two different learning rates for the same "
         "parameters; the converted run deviates (docs/theory.md §5: 9.4e-5 relative after 60 steps "
         "of a small test net, growing with the run).",
         "",
         "Switch to plain momentum for an exact conversion, or convert with `--approximate` and accept "
         "the deviation."),
    Rule("EXP202", "non-sgd-optimizer", _E, "The optimizer has no exact exponential-LR equivalent.",
         "Reports optimizers other than SGD (Adam, AdamW, RMSprop, ...).",
         "Adaptive moment estimates mix gradients of different scales, so no LR schedule reproduces the "
         "weight-decay run exactly (AdamW is only approximately ExpLR with growth (1 - lr*wd)^-1).",
         "",
         "Use SGD for an exact conversion, or `--approximate` to convert anyway."),
    Rule("EXP203", "grad-clipping", _E, "Gradient-norm clipping over all parameters breaks exact equivalence.",
         "Reports gradient-norm clipping configured for training.",
         "After conversion the SI gradients shrink like s_t while the others do not, so a clip over the "
         "global norm triggers at different steps and by different amounts than in the original run.",
         "",
         "Remove clipping, clip only the non-SI parameters, or convert with `--approximate`."),
    Rule("EXP204", "weight-averaging", _W, "Weight EMA/SWA averages iterates of different scale.",
         "Reports weight EMA or stochastic weight averaging.",
         "Converted SI weights are the original ones divided by s_t, which changes over the run; an "
         "average over iterates mixes scales, so the averaged model differs from the original average.",
         "",
         "Average the rescaled weights (multiply by s_t first), average only non-SI parameters, or "
         "convert with `--approximate`."),
    Rule("EXP205", "fp16-underflow", _W, "Under fp16 autocast the converted gradients underflow after some step.",
         "Computes the step at which the converted SI gradients (which shrink like s_t) fall below "
         "float16's smallest subnormal, with the default loss scale, and reports it when it lies inside the run.",
         "Gradients that underflow become exactly zero and the SI parameters stop training; loss scaling "
         "only delays this.",
         "",
         "Train in bf16 (`bf16-mixed`, float32's range) or float32, or enable the runtime's "
         "renormalization, which keeps weights and gradients in range exactly."),
    Rule("EXP206", "fp32-overflow", _W,
         "Converted SI weights overflow float32 before training ends unless renormalized.",
         "Computes the step at which the converted SI weights (which grow like 1/s_t) exceed float32's "
         "range, and reports it when it lies inside the run.",
         "Long runs with weight decay shrink the phantom scale s_t by many orders of magnitude; the "
         "converted weights then become inf and training breaks.",
         "",
         "Enable the runtime's renormalization (`explr.TEXP(..., renormalize=(low, high))`); it rescales SI "
         "weights, momentum buffers and later LRs exactly."),
    Rule("EXP207", "per-epoch-scheduler", _I,
         "The original scheduler steps per epoch; the converted one steps per iteration.",
         "Notes that the original LR scheduler is stepped once per epoch.",
         "The converted LR changes every iteration (it grows by alpha^-2 per step), so the converted "
         "scheduler must be stepped every iteration; stepping it per epoch would be wrong.",
         "",
         "Nothing to fix in the original config; use the converted config (or `explr.TEXP`) and step it "
         "every iteration (Lightning: `interval: step`)."),
    Rule("EXP208", "no-weight-decay-on-si", _I,
         "Weight decay is already zero for the SI parameters: the conversion changes nothing.",
         "Reports configs whose weight decay is zero for weights (the parameters that are usually "
         "scale-invariant).",
         "With no weight decay the phantom scale stays 1 and the converted LR equals the original one; "
         "the conversion is a no-op.",
         "",
         "Nothing to convert; set the weight decay you intend to use first."),
    Rule("EXP209", "milestone-after-end", _I,
         "A decay milestone lies at or past the end of training: it never takes effect.",
         "Reports LR-decay milestones at or after the last training iteration.",
         "torch's MultiStepLR (and the frameworks built on it) simply never reach such a milestone, so the "
         "run trains without that decay; explr ignores it the same way.",
         "lr_scheduler: {class_path: torch.optim.lr_scheduler.MultiStepLR, init_args: {milestones: [150, 250]}}"
         "\ntrainer: {max_epochs: 200}",
         "Nothing breaks; remove the milestone or train longer if the decay was meant to happen."),
    Rule("EXP210", "class-inferred", _I,
         "The optimizer or scheduler class was inferred from its arguments (no class_path in the config).",
         "Reports a LightningCLI `optimizer` / `lr_scheduler` section without `class_path` whose class explr "
         "read as the only torch class taking exactly those arguments.",
         "A script can fix the class (`parser.add_optimizer_args(torch.optim.SGD)`), so the config holds only "
         "init args; if the script fixes a different class, explr's reading is wrong.",
         "optimizer: {lr: 0.05, momentum: 0.9, weight_decay: 5.0e-4, nesterov: true}",
         "Nothing, when the inferred class is the one the script gives; else pass `--optimizer-class` / "
         "`--scheduler-class` with the script's class."),
    # ---- lock rules ----------------------------------------------------------------------------
    Rule("EXP301", "lock-mismatch", _E, "The model's SI set or structure differs from the lock file.",
         "Compares the model with the lock file written by `explr audit MODEL --write-lock FILE`: the "
         "parameter names and shapes, the module types, the scale-invariant set and its groups.",
         "A converted schedule is only exact for the SI set it was computed for; adding a bias or removing "
         "a BatchNorm silently makes it wrong before an expensive training run.",
         "",
         "If the change is intended, re-run `explr audit MODEL --write-lock FILE`, re-convert the config "
         "and commit both; otherwise restore the model."),
]

# The examples live in explr.rules.examples (runnable, tested); EXP109's stays prose: no correct model triggers it.
_TABLE = [replace(rule, example=EXAMPLES[rule.code].invalid or rule.example, valid_example=EXAMPLES[rule.code].valid)
          for rule in _TABLE]
