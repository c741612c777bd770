"""`explr audit` on a model whose static claim the numeric confirmation refutes: every output
(text, JSON, SARIF, the lock file) carries the confirmed SI set, and EXP109 says what was withdrawn."""
import json

from explr.cli import main
from explr.lock import read_lock

MODEL = '''
import torch
from torch import nn


class Frozen(nn.Module):
    """Branches on its weight through the parameter dict: capture sees only the normalized branch."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4, affine=False)
        self.other = nn.Conv2d(3, 4, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4, affine=False)
        self.reference = float(self.conv.weight.detach().norm())

    def forward(self, x):
        side = self.bn2(self.other(x))
        if abs(float(self.conv._parameters["weight"].norm()) - self.reference) < 1e-6:
            return self.bn(self.conv(x)) + side
        return self.conv(x) + side


def example_inputs():
    return (torch.randn(4, 3, 6, 6),)
'''


def test_every_output_carries_the_confirmed_set(tmp_path, capsys):
    path = tmp_path / "frozen.py"
    path.write_text(MODEL)
    lock = tmp_path / "explr.lock"
    code = main(["audit", str(path), "--format", "json", "--write-lock", str(lock), "--fail-on", "never"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    verdicts = {p["name"]: p for p in doc["parameters"]}
    assert verdicts["conv.weight"]["si"] is False and verdicts["conv.weight"]["reason"].startswith("refuted numerically")
    assert verdicts["other.weight"]["si"] is True
    assert "EXP109" in {f["code"] for f in doc["findings"]}
    assert read_lock(lock).si == ("other.weight",)
    main(["audit", str(path), "--format", "sarif", "--fail-on", "never"])
    sarif = json.loads(capsys.readouterr().out)
    assert "EXP109" in {r["ruleId"] for r in sarif["runs"][0]["results"]}
    main(["audit", str(path), "--fail-on", "never"])
    text = capsys.readouterr().out
    assert "refuted numerically" in text and "1/2 parameter tensors" in text
