"""Each rule's examples, Fixit style: an `invalid` case that triggers the rule and a `valid` one that does
not. tests/rules/test_examples.py runs every one of them; docs/rules.md shows them.

How a case runs depends on the family:
- EXP1xx: a model file (Python source); `explr audit FILE` on it (inputs inferred from the first layer).
- EXP2xx: a config in explr's own format (docs/formats.md); its config rules. EXP210 concerns LightningCLI
  configs only, so its examples are LightningCLI configs.
- EXP3xx: a model file; the lock is recorded from the `valid` model, then the case is audited against it.
`invalid` is None only for EXP109, which no correct model can trigger (it fires when explr's own
transfer rule is wrong; tests/audit/test_verify.py triggers it by corrupting a verdict).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Examples:
    invalid: str | None  # triggers the rule
    valid: str  # the fixed version: does not trigger it


def _lightning(optimizer: str) -> str:
    return ("trainer: {max_epochs: 200}\ndata: {init_args: {batch_size: 128, dataset: cifar10}}\n"
            f"optimizer: {optimizer}\n")


def _model(body: str, imports: str = "from torch import nn") -> str:
    body = body.strip()
    return f"{imports}\n\n{chr(10) if body.startswith('class') else ''}{body}\n"  # PEP 8: 2 lines before a class


def _config(optimizer: str = "lr: 0.1, momentum: 0.9, weight_decay: 5.0e-4",
            schedule: str = "decay: step, milestones: [100, 150]", training: str = "") -> str:
    extra = f", {training}" if training else ""
    return (f"explr: 1\noptimizer: {{name: sgd, {optimizer}}}\nschedule: {{unit: epoch, {schedule}}}\n"
            f"training: {{epochs: 200, iters_per_epoch: 391{extra}}}\n")


_BN_CONV = "nn.Sequential(nn.Conv2d(3, 16, 3, bias=False), nn.BatchNorm2d(16{}))"
_GATE = """
class Gate(nn.Module):
    def forward(self, x):
        {body}


model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), Gate(),
                      nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8))
"""
_ODD_OP = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, bias=False)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        return {expression}
"""
_TWO_BN = ("nn.Sequential(nn.Conv2d(3, 16, 3, bias=False), nn.BatchNorm2d(16{}), nn.ReLU(),\n"
           "                      nn.Conv2d(16, 16, 3, bias=False), nn.BatchNorm2d(16, affine=False))")

EXAMPLES: dict[str, Examples] = {
    "EXP101": Examples(_model("model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))"),
                       _model("model = nn.Sequential(nn.Linear(8, 16, bias=False), nn.LayerNorm(16), nn.ReLU(), "
                              "nn.Linear(16, 2))")),
    "EXP102": Examples(_model("model = nn.Sequential(nn.Conv2d(3, 16, 3, bias=True), nn.BatchNorm2d(16))"),
                       _model("model = nn.Sequential(nn.Conv2d(3, 16, 3, bias=False), nn.BatchNorm2d(16))")),
    "EXP103": Examples(_model("model = nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, 2))"),
                       _model("model = nn.Sequential(nn.Linear(8, 16, bias=False), nn.LayerNorm(16), nn.ReLU(), "
                              "nn.Linear(16, 2))")),
    "EXP104": Examples(
        _model(_GATE.format(body="if x.sum() > 0:  # a data-dependent Python branch: torch.fx cannot trace it\n"
                                 "            x = x.relu()\n        return x"), "import torch\nfrom torch import nn"),
        _model(_GATE.format(body="return torch.where(x.sum() > 0, x.relu(), x)  # the same as a tensor op"),
               "import torch\nfrom torch import nn")),
    "EXP105": Examples(
        _model(_ODD_OP.format(expression="torch.special.erfinv(torch.tanh(self.bn(self.conv(x))))  # no rule for erfinv"),
               "import torch\nfrom torch import nn"),
        _model(_ODD_OP.format(expression="torch.tanh(self.bn(self.conv(x)))"), "import torch\nfrom torch import nn")),
    "EXP106": Examples(_model(f"model = {_TWO_BN.format('')}"), _model(f"model = {_TWO_BN.format(', affine=False')}")),
    "EXP107": Examples(_model("model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8, affine=False), "
                              "nn.Flatten(),\n                      nn.Linear(8 * 30 * 30, 10))"),
                       _model("model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8, affine=False), "
                              "nn.Flatten())")),
    "EXP108": Examples(_model(f"model = {_BN_CONV.format(', eps=1.0')}  # inputs of variance ~1"),
                       _model(f"model = {_BN_CONV.format('')}  # eps 1e-5")),
    "EXP109": Examples(None, _model(f"model = {_BN_CONV.format('')}")),
    "EXP110": Examples(_model(f"model = {_BN_CONV.format('')}"),
                       _model("model = nn.Sequential(nn.Conv2d(3, 16, 3, bias=False), nn.GroupNorm(4, 16))")),
    "EXP201": Examples(_config("lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 5.0e-4"), _config()),
    "EXP202": Examples(_config("lr: 0.001, weight_decay: 0.05").replace("name: sgd", "name: adamw"), _config()),
    "EXP203": Examples(_config(training="grad_clip_norm: 1.0"), _config()),
    "EXP204": Examples(_config(training="ema: true"), _config()),
    "EXP205": Examples(_config(training="precision: 16-mixed"), _config(training="precision: bf16-mixed")),
    "EXP206": Examples(_config(schedule="decay: constant").replace("epochs: 200", "epochs: 500"),
                       _config(schedule="decay: constant")),
    "EXP207": Examples(_config(schedule="decay: step, milestones: [100, 150], stepped_every: epoch"), _config()),
    "EXP208": Examples(_config("lr: 0.1, momentum: 0.9, weight_decay: 0.0"), _config()),
    "EXP209": Examples(_config(schedule="decay: step, milestones: [100, 250]"), _config()),
    "EXP210": Examples(_lightning("{lr: 0.1, momentum: 0.9, dampening: 0.0, weight_decay: 5.0e-4}"),
                       _lightning("{class_path: torch.optim.SGD, init_args: {lr: 0.1, momentum: 0.9, "
                                  "weight_decay: 5.0e-4}}")),
    "EXP301": Examples(_model(_TWO_BN.format("").replace("nn.BatchNorm2d(16, affine=False)", "nn.Identity()")
                              .join(("model = ", "  # the last BatchNorm removed"))),
                       _model(f"model = {_TWO_BN.format('')}")),
}
