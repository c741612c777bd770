"""`explr check`: summary on stdout, JSON, exit codes 0 passed / 1 failed / 2 bad input (one line)."""
from __future__ import annotations

import json

import pytest
import torch

from explr.cli import main
from tests.conftest import FIXTURES

MODEL = str(FIXTURES / "models" / "resnet_cifar.py")
CONFIG = str(FIXTURES / "configs" / "demo" / "cifar10_step.yaml")
FAST = ["--steps", "8", "--check-batch-size", "4"]


def run(capsys, *args):
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_passing_check_exits_0_with_the_summary_on_stdout(capsys):
    code, out, err = run(capsys, MODEL, CONFIG, *FAST)
    assert code == 0 and "PASSED" in out and "max rel. output deviation" in out and "1.4812" in out
    assert "milestone 1: iteration 31,280 (epoch 80) -> step 4" in err  # the mapping, as a diagnostic


def test_json_output(capsys):
    code, out, _ = run(capsys, MODEL, CONFIG, *FAST, "--json")
    data = json.loads(out)
    assert code == 0 and data["schema"] == "explr.check/1" and data["passed"] is True and data["steps"] == 8
    assert data["tolerance"] == 1e-6 and data["noise_floor"] is None and data["eval_mode"]["expect"] == "recalibrated"


def test_failing_check_exits_1_and_explains(capsys):
    from explr.audit.api import audit
    from explr.load import load_model

    loaded = load_model(MODEL)
    report = audit(loaded.model, loaded.example_inputs, verify=False)
    head = next(p.name for p in reversed(report.parameters) if not p.si and p.name.endswith("weight"))
    forced = [arg for name in report.si_names + [head] for arg in ("--si", name)]
    code, out, _ = run(capsys, MODEL, CONFIG, *FAST, *forced)
    assert code == 1 and "FAILED" in out and "likely cause (wrong_si)" in out and head in out


def test_nesterov_with_approximate_fails_and_names_nesterov(capsys):
    config = str(FIXTURES / "configs" / "pycls" / "cifar_resnet56_steps.yaml")
    code, out, _ = run(capsys, MODEL, config, *FAST, "--approximate", "--json")
    data = json.loads(out)
    assert code == 1 and data["diagnosis"]["causes"][0]["code"] == "nesterov"


@pytest.mark.parametrize("args,message", [
    ([str(FIXTURES / "models" / "no_norm.py"), CONFIG], "nothing to convert"),
    ([MODEL, str(FIXTURES / "configs" / "pycls" / "cifar_resnet56_steps.yaml")], "--approximate"),
    ([MODEL, CONFIG, "--si", "layer9.conv.weight"], "not parameters of the model"),
    ([MODEL, CONFIG, "--data", "no_such_module_xyz:batches"], "no_such_module_xyz"),
    ([MODEL, CONFIG, "--steps", "2"], "too few"),
    ([MODEL, CONFIG, "--plot", "/no/such/dir/x.png"], "does not exist"),
    ([MODEL, "/no/such/config.yaml"], "no such file"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    code, out, err = run(capsys, *args, *FAST[2:])
    assert code == 2 and out == "" and message in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("explr: error:")


def test_data_the_model_rejects_is_one_line_before_any_training(capsys, tmp_path):
    data = tmp_path / "wrongshape.py"
    data.write_text("import torch\ndef batches():\n    return [(torch.randn(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))]\n")
    code, out, err = run(capsys, MODEL, CONFIG, *FAST, "--data", f"{data}:batches")
    assert code == 2 and out == "" and err.count("\n") == 1 and "rejected the first batch ((4, 1, 8, 8)" in err


def test_lock_file_gives_the_si_set_and_a_model_that_does_not_fit_it_is_exit_2(capsys, tmp_path):
    from explr.audit.api import audit
    from explr.load import load_model
    from explr.lock import write_lock

    loaded = load_model(MODEL)
    lock = tmp_path / "explr.lock.json"
    report = audit(loaded.model, loaded.example_inputs, verify=False)
    write_lock(report, loaded.model, lock)
    code, out, _ = run(capsys, MODEL, CONFIG, *FAST, "--lock", str(lock), "--json")
    assert code == 0 and json.loads(out)["si_params"] == len(report.si_names)
    other = str(FIXTURES / "models" / "densenet_bc.py")
    code, out, err = run(capsys, other, CONFIG, *FAST, "--lock", str(lock))
    assert code == 2 and out == "" and "explr: error:" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is absent")
def test_cuda_requested_but_absent_is_exit_2(capsys):
    code, out, err = run(capsys, MODEL, CONFIG, *FAST, "--device", "cuda")
    assert code == 2 and "no CUDA device" in err


def test_bad_dtype_is_a_usage_error(capsys):
    code, _, _ = run(capsys, MODEL, CONFIG, "--dtype", "float8")
    assert code == 2


def test_check_shows_the_config_findings_convert_shows(capsys, tmp_path):
    lightning = FIXTURES / "configs" / "lightning" / "cifar_resnet_step.yaml"
    path = tmp_path / "fp16.yaml"
    path.write_text(lightning.read_text().replace("precision: 32", "precision: 16-mixed"))
    code, out, _ = run(capsys, MODEL, str(path), *FAST, "--json")
    notes = json.loads(out)["notes"]
    assert code == 0 and any(n.startswith(f"warning EXP205 {path}:") for n in notes)
    code, out, _ = run(capsys, MODEL, str(path), *FAST)
    assert code == 0 and f"warning EXP205 {path}:" in out.replace("\n", " ")


def test_check_reads_a_config_whose_script_fixes_the_classes(capsys, tmp_path):
    path = tmp_path / "no_class_path.yaml"  # LightningCLI with parser.add_optimizer_args(torch.optim.SGD)
    path.write_text("trainer: {max_epochs: 4}\nmodel: {}\noptimizer: {lr: 0.1, momentum: 0.9, weight_decay: 5.0e-4}\n"
                    "lr_scheduler: {milestones: [2], gamma: 0.1}\n")
    code, _, err = run(capsys, MODEL, str(path), *FAST, "--iters-per-epoch", "3")
    assert code == 2 and "pass --optimizer-class" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run(capsys, MODEL, str(path), *FAST, "--iters-per-epoch", "3",
                       "--optimizer-class", "torch.optim.SGD", "--json")
    notes = json.loads(out)["notes"]
    assert code == 0 and any(n.startswith("info EXP210") and "MultiStepLR" in n for n in notes)


def test_binary_lock_file_is_one_line(capsys, tmp_path):
    lock = tmp_path / "explr.lock"
    lock.write_bytes(b"\x00\xff\xfe binary")
    code, out, err = run(capsys, MODEL, CONFIG, *FAST, "--lock", str(lock))
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(lock) in err and "Traceback" not in err
    code = main(["audit", MODEL, "--lock", str(lock)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(lock) in err
