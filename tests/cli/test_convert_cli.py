"""`explr convert`: stdout = converted config or JSON, stderr = summary table, bad input = one line + exit 2."""
from __future__ import annotations

import json

import pytest

from explr.cli import main
from explr.configs.adapter import ReadOptions
from explr.configs.detectron2 import ADAPTER as DETECTRON2
from explr.configs.source import ConfigSource
from tests.configs.texp_harness import MODEL
from tests.conftest import FIXTURES

CIFAR = str(FIXTURES / "configs" / "lightning" / "cifar_resnet_step.yaml")


def run(capsys, *args):
    code = main(["convert", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_default_prints_config_on_stdout_and_table_on_stderr(capsys):
    code, out, err = run(capsys, CIFAR)
    assert code == 0 and "class_path: explr.integrations.lightning.TEXPScheduler" in out
    assert "lightning config (has `optimizer.class_path`" in err and "1.4812" in err
    assert "audit the model on the first training batch" in err  # no --model/--lock: said so


def test_json_summary_on_stdout(capsys, tmp_path):
    out_file = tmp_path / "o.yaml"
    code, out, err = run(capsys, CIFAR, "--json", "-o", str(out_file), "--iters-per-epoch", "10")
    data = json.loads(out)
    assert code == 0 and data["schema"] == "explr.convert/1" and data["iters_per_epoch"] == 10
    assert out_file.exists() and "TEXPScheduler" in out_file.read_text()


def test_json_alone_writes_no_config(capsys):
    code, out, err = run(capsys, CIFAR, "--json")
    assert code == 0 and json.loads(out)["format"] == "lightning" and "only the summary" in err


@pytest.mark.parametrize("text,flags,message", [
    ("a: [1, 2\n", [], r"bad.yaml:2:1: invalid YAML"),
    ("epochs: 3\n", [], "unrecognised config format"),
    ("trainer: {max_epochs: 3}\nmodel: {}\noptimizer:\n  class_path: torch.optim.SGD\n  init_args: {lr: 0.1}\n",
     [], "pass --iters-per-epoch N"),
    ("trainer: {max_epochs: 3}\nmodel: {}\noptimizer:\n  class_path: torch.optim.SGD\n"
     "  init_args: {lr: 0.1, momentum: 0.9, nesterov: true}\n", ["--iters-per-epoch", "5"],
     r"bad.yaml:5: no exact conversion: Nesterov.*--approximate"),
])
def test_bad_input_one_line_exit_2_nothing_written(capsys, tmp_path, text, flags, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    out_file = tmp_path / "out.yaml"
    code, out, err = run(capsys, str(path), "-o", str(out_file), *flags)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    import re

    assert re.search(message, err), err
    assert not out_file.exists() and path.read_text() == text


def test_unwritable_output(capsys, tmp_path):
    code, out, err = run(capsys, CIFAR, "-o", str(tmp_path / "nope" / "x.yaml"))
    assert code == 2 and "cannot write" in err and out == ""


def test_text_output_shows_every_finding_json_lists(capsys, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(open(CIFAR).read().replace("precision: 32", "precision: 16-mixed"))
    code, out, _ = run(capsys, str(path), "--json")
    findings = json.loads(out)["findings"]
    assert code == 0 and {f["code"] for f in findings} >= {"EXP205", "EXP207"}
    code, _, err = run(capsys, str(path))
    lines = err.splitlines()
    for f in findings:  # each on one line: severity, code, file:line, message
        assert f"{f['severity']} {f['code']} {f['location']}: {f['message']}" in lines


@pytest.mark.parametrize("content", [b"\x00\x01\x02binary", b"lr: \xff\xfe\n", "epochs: 3\x07\n".encode()])
def test_binary_or_non_utf8_config_is_one_line_exit_2(capsys, tmp_path, content):
    path = tmp_path / "bin.yaml"
    path.write_bytes(content)
    code, out, err = run(capsys, str(path))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and str(path) in err
    code = main(["check", str(FIXTURES / "models" / "conv_bias_bn.py"), str(path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "internal error" not in err and str(path) in err


def test_length_flags(capsys, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {max_epoch: 7}\noptim:\n  _target_: torch.optim.SGD\n"
                    "  lr: 0.1\n  momentum: 0.9\n  weight_decay: 5.0e-4\n")  # a key explr does not know (MbLS)
    code, out, err = run(capsys, str(path), "--iters-per-epoch", "10")
    assert code == 2 and "--epochs N" in err and "--total-iters N" in err
    code, out, _ = run(capsys, str(path), "--iters-per-epoch", "10", "--epochs", "7", "--json")
    assert code == 0 and json.loads(out)["source"]["total_iters"] == 70
    code, out, _ = run(capsys, str(path), "--iters-per-epoch", "10", "--total-iters", "65", "--json")
    assert code == 0 and json.loads(out)["source"]["total_iters"] == 65
    code, out, err = run(capsys, str(path), "--iters-per-epoch", "10", "--total-iters", "65", "--epochs", "7")
    assert code == 2 and "only one of --epochs and --total-iters" in err
    code, out, err = run(capsys, str(path), "--iters-per-epoch", "10", "--epochs", "0")
    assert code == 2 and "--epochs=0 must be > 0" in err


def test_public_api_name():
    import explr

    assert explr.convert(CIFAR).plan.iters_per_epoch == 391


TIMM = FIXTURES / "configs" / "timm" / "cifar10_resnet_multistep.yaml"


def test_check_up_to_date_then_stale_then_missing(capsys, tmp_path):
    committed = tmp_path / "converted.yaml"
    assert run(capsys, CIFAR, "-o", str(committed))[0] == 0
    code, out, err = run(capsys, CIFAR, "--check", "-o", str(committed))
    assert (code, out) == (0, "") and "up to date" in err
    stale = committed.read_text().replace("class_path: explr.integrations.lightning.TEXPScheduler",
                                          "class_path: torch.optim.lr_scheduler.MultiStepLR")
    committed.write_text(stale)
    code, out, err = run(capsys, CIFAR, "--check", "-o", str(committed))
    assert code == 1 and out == "" and "is stale" in err
    assert "-  class_path: torch.optim.lr_scheduler.MultiStepLR" in err
    assert "+  class_path: explr.integrations.lightning.TEXPScheduler" in err
    assert committed.read_text() == stale  # --check writes nothing
    committed.unlink()
    code, out, err = run(capsys, CIFAR, "--check", "-o", str(committed))
    assert code == 1 and "run explr convert" in err and not committed.exists()


def test_check_inherit_format_uses_the_default_side_path(capsys, tmp_path):
    """detectron2 output inherits the input (_BASE_): --in-place and --check use NAME_explr.yaml next to it."""
    original = FIXTURES / "configs" / "detectron2" / "COCO-Detection" / "retinanet_cosine.yaml"
    config = tmp_path / original.name
    config.write_text(original.read_text().replace('_BASE_: "../', f'_BASE_: "{original.parent.parent}/'))
    side = tmp_path / (config.stem + "_explr.yaml")
    args = (str(config), "--model", MODEL, "--approximate")
    assert run(capsys, *args, "--check")[0] == 1 and not side.exists()
    assert run(capsys, *args, "--in-place")[0] == 0 and side.exists()
    assert run(capsys, *args, "--check")[0] == 0
    assert f"_BASE_: ./{config.name}" in side.read_text()


def test_idiomatic_outputs_need_the_si_parameters(capsys, tmp_path):
    code, out, err = run(capsys, str(TIMM), "-o", str(tmp_path / "o.yaml"))
    assert code == 2 and "pass --lock FILE" in err and not (tmp_path / "o.yaml").exists()


def test_check_rewrite_format_needs_the_committed_path(capsys):
    code, out, err = run(capsys, CIFAR, "--check")
    assert code == 2 and "pass -o COMMITTED_FILE" in err and out == ""


def test_check_with_an_empty_output_path_is_a_usage_error(capsys):
    code, out, err = run(capsys, CIFAR, "--check", "-o", "")
    assert code == 2 and "pass -o COMMITTED_FILE" in err and "Traceback" not in err


def test_check_with_in_place_is_a_usage_error_and_writes_nothing(tmp_path, capsys):
    config = tmp_path / "cfg.yaml"
    config.write_text("optimizer: {}\n")
    before = config.read_text()
    assert main(["convert", str(config), "--check", "--in-place"]) == 2
    assert "drop --in-place" in capsys.readouterr().err
    assert config.read_text() == before


def test_approximate_output_does_not_advise_approximate(capsys, tmp_path):
    path = tmp_path / "nesterov.yaml"
    path.write_text("trainer: {max_epochs: 3}\nmodel: {}\noptimizer:\n  class_path: torch.optim.SGD\n"
                    "  init_args: {lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 5.0e-4}\n")
    code, out, err = run(capsys, str(path), "--iters-per-epoch", "5", "--approximate", "-o", str(tmp_path / "o.yaml"))
    assert code == 0 and "conversion: approximate" in err and "Nesterov" in err
    assert "--approximate" not in out + err
    code, out, err = run(capsys, str(path), "--iters-per-epoch", "5", "--approximate", "--json")
    assert code == 0 and "--approximate" not in out + err and json.loads(out)["exact"] is False


def test_huge_growth_warns_with_the_renormalization_fix(capsys, tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text("trainer: {max_epochs: 430}\nmodel: {}\noptimizer:\n  class_path: torch.optim.SGD\n"
                    "  init_args: {lr: 0.1, momentum: 0.9, weight_decay: 5.0e-4}\n")
    code, _, err = run(capsys, str(path), "--iters-per-epoch", "391", "-o", str(tmp_path / "out.yaml"))
    assert code == 0 and "warning: SI weight norms grow by 4.8e+36" in err and "renormalize=(low, high)" in err


D2_REAL = FIXTURES / "configs" / "detectron2" / "real"


@pytest.mark.parametrize("config", ["configs/PascalVOC-Detection/faster_rcnn_R_50_FPN.yaml",
                                    "projects/DensePose/configs/densepose_rcnn_R_50_FPN_s1x.yaml",
                                    "configs/quick_schedules/mask_rcnn_R_50_FPN_instant_test.yaml"])
@pytest.mark.parametrize("approximate", [[], ["--approximate"]])
def test_detectron2_dataset_of_unknown_size_converts_per_iteration(capsys, tmp_path, config, approximate):
    """A per-iteration schedule needs no epoch length: only the epoch columns are unknown (they were a TypeError)."""
    out_file = tmp_path / "converted.yaml"
    approximate = [*approximate, "--model", MODEL]  # the detectron2 output names the SI parameters
    code, out, err = run(capsys, str(D2_REAL / config), "--json", "-o", str(out_file), *approximate)
    data = json.loads(out)
    assert code == 0 and data["iters_per_epoch"] is None and data["exact"] is True
    assert all(h["epoch"] is None for h in data["horizons"].values())
    assert all(p["growth_per_epoch"] is None for p in data["phases"])
    code, out, err = run(capsys, str(D2_REAL / config), "-o", str(tmp_path / "again.yaml"), *approximate)
    assert code == 0 and "unknown iterations/epoch" in err and "Traceback" not in err
    plan = DETECTRON2.read(ConfigSource.load(out_file), ReadOptions())  # the written config reads back without flags
    assert plan.iters_per_epoch is None and plan.total_iters == data["source"]["total_iters"]
VERIFY_MODEL = str(FIXTURES / "models" / "resnet_cifar.py")


@pytest.fixture
def short_check(monkeypatch):
    monkeypatch.setattr("explr.check.api.DEFAULT_STEPS", 8)  # the budget still times and plans; at most 8 steps


def test_verify_writes_the_config_then_checks_it_and_reports_in_the_exit_code(capsys, tmp_path, short_check):
    out_file = tmp_path / "train.texp.yaml"
    code, out, err = run(capsys, CIFAR, "--model", VERIFY_MODEL, "-o", str(out_file), "--verify",
                         "--iters-per-epoch", "20")
    assert code == 0 and out == ""
    assert "TEXPScheduler" in out_file.read_text()
    assert "plan: 8 steps x 2 runs" in err and "PASSED" in err and "written to" in err


def test_verify_fails_with_exit_1_when_the_runs_differ(capsys, tmp_path, short_check):
    config = tmp_path / "nesterov.yaml"
    config.write_text(open(CIFAR).read().replace("momentum: 0.9", "momentum: 0.9\n    nesterov: true"))
    code, out, err = run(capsys, str(config), "--model", VERIFY_MODEL, "--approximate", "-o",
                         str(tmp_path / "o.yaml"), "--verify", "--iters-per-epoch", "20", "--json")
    assert code == 1 and json.loads(out)["check"]["passed"] is False
    assert (tmp_path / "o.yaml").exists()


def test_verify_needs_a_model(capsys):
    code, out, err = run(capsys, CIFAR, "--verify")
    assert code == 2 and "--verify" in err and "--model" in err and len(err.strip().splitlines()) == 1
