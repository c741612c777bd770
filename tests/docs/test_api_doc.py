"""The runnable example in docs/api.md runs as written and converts the setup it shows."""
import re

from tests.conftest import ROOT

MARKER = "<!-- runnable-example -->"


def runnable_example() -> str:
    text = (ROOT / "docs" / "api.md").read_text()
    match = re.search(re.escape(MARKER) + r"\s*```python\n(.*?)```", text, re.S)
    assert match, f"docs/api.md has no python block after {MARKER}"
    return match.group(1)


def test_api_example_runs_and_converts():
    scope: dict = {}
    exec(compile(runnable_example(), "docs/api.md", "exec"), scope)
    opt, sched = scope["opt"], scope["sched"]
    si = [g for g in opt.param_groups if g["explr_si"]]
    assert [g["param_names"] for g in si] == [["0.weight"]]
    assert si[0]["weight_decay"] == 0.0 and si[0]["explr_weight_decay"] == 5e-4
    assert si[0]["lr"] > 0.1  # converted LR grows while the original stays at 0.1
    head = next(g for g in opt.param_groups if "5.weight" in g["param_names"])
    assert head["lr"] == 0.1 and head["weight_decay"] == 5e-4
    assert sched.last_epoch == 3
