"""`explr audit`: formats, exit codes, stdout/stderr split, bad input as one line + exit 2.

Exit-code and wiring tests swap in a report with chosen findings (the CLI is a thin shell);
the end-to-end tests run the real analysis on tiny models.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from explr.audit_report import AuditReport, ParamVerdict, Verification
from explr.cli import audit as audit_cli
from explr.cli import main
from explr.rules.registry import finding

MODELS = Path(__file__).resolve().parent.parent / "data" / "models"
TINY = str(MODELS / "tiny_cnn.py")


def run(capsys, *args):
    code = main(["audit", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def audit_returns(monkeypatch):
    """Make the audit return a report carrying the given findings."""
    def install(*codes):
        def fake(loaded, *, verify):
            params = [ParamVerdict(n, tuple(p.shape), p.numel(), False, False, None, "model output")
                      for n, p in loaded.model.named_parameters()]
            return AuditReport(loaded.name, params, [], [finding(c, f"{c} fired") for c in codes],
                               Verification("passed" if verify else "skipped", 0.0 if verify else None),
                               inputs=loaded.inputs_note)
        monkeypatch.setattr(audit_cli, "run_audit", fake)
    return install


# ------------------------------------------------------------------------------ exit codes

@pytest.mark.parametrize("codes, fail_on, expected", [
    ((), "error", 0),
    (("EXP101",), "error", 0),         # a warning does not fail by default
    (("EXP101",), "warning", 1),
    (("EXP107",), "warning", 0),       # info is below warning
    (("EXP107",), "info", 1),
    (("EXP109",), "error", 1),         # a failed confirmation is an error
    (("EXP109",), "never", 0),
])
def test_exit_code_follows_fail_on(capsys, audit_returns, codes, fail_on, expected):
    audit_returns(*codes)
    code, out, _ = run(capsys, TINY, "--fail-on", fail_on, "--format", "json")
    assert code == expected
    assert [f["code"] for f in json.loads(out)["findings"]] == list(codes)


def test_data_on_stdout_diagnostics_on_stderr(capsys, audit_returns):
    audit_returns()
    code, out, err = run(capsys, TINY, "--format", "json")
    assert code == 0
    assert json.loads(out)["model"] == TINY  # stdout is pure JSON
    assert "inputs: float32[2, 3, 32, 32] (inferred from the first layer conv" in err


def test_text_report_states_the_inputs_once(capsys, audit_returns):
    audit_returns()
    code, out, err = run(capsys, TINY)
    assert code == 0 and (out + err).count("inputs: float32[2, 3, 32, 32]") == 1 and "inputs: " in out


def test_output_file_is_written_and_stdout_stays_empty(capsys, audit_returns, tmp_path):
    audit_returns()
    target = tmp_path / "report.json"
    code, out, err = run(capsys, TINY, "--format", "json", "-o", str(target))
    assert code == 0 and out == "" and f"wrote {target}" in err
    assert json.loads(target.read_text())["schema"] == "explr.audit/1"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temp file left


def test_kwargs_reach_the_factory(capsys, audit_returns):
    audit_returns()
    _, out, _ = run(capsys, TINY, "--kwargs", '{"num_classes": 3}', "--format", "json")
    shapes = {p["name"]: p["shape"] for p in json.loads(out)["parameters"]}
    assert shapes["fc.weight"] == [3, 8]


def test_sarif_format(capsys, audit_returns):
    audit_returns("EXP101")
    code, out, _ = run(capsys, TINY, "--format", "sarif")
    doc = json.loads(out)
    assert code == 0 and doc["version"] == "2.1.0"
    assert [r["ruleId"] for r in doc["runs"][0]["results"]] == ["EXP101"]


def test_no_verify_is_passed_through(capsys, audit_returns):
    audit_returns()
    _, out, _ = run(capsys, TINY, "--no-verify", "--format", "json")
    assert json.loads(out)["verification"]["status"] == "skipped"


# ------------------------------------------------------------------------------ bad input: exit 2, one line

@pytest.mark.parametrize("args, expected", [
    ([str(MODELS / "missing.py")], "missing.py does not exist"),
    ([str(MODELS / "syntax_error.py")], "syntax_error.py:3: syntax error"),
    ([str(MODELS / "raises_on_import.py")], "RuntimeError: DATA_ROOT is not set"),
    ([str(MODELS / "two_classes.py")], "several candidate models (Small, Large)"),
    ([str(MODELS / "no_model.py")], "no_model.py: no model found"),
    ([str(MODELS / "factory_raises.py")], "factory_raises.py:build_model(): building the model raised FileNotFoundError"),
    ([str(MODELS / "needs_args.py")], "needs argument width; pass --kwargs"),
    ([str(MODELS / "not_a_module.py")], "not_a_module.py:model is of type int, not an nn.Module"),
    ([TINY, "--kwargs", "{oops"], "--kwargs '{oops' is not valid JSON"),
    ([TINY, "--input-shape", "2,three"], "--input-shape '2,three' is not a shape"),
    ([TINY, "-o", "/nonexistent-dir/report.json"], "directory /nonexistent-dir does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, audit_returns, args, expected):
    audit_returns()
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("explr: error: ")
    assert expected in err


def test_rejected_input_shape_quotes_the_model_error(capsys):
    code, out, err = run(capsys, str(MODELS / "linear_8.py"), "--input-shape", "2,3")
    errors = [line for line in err.splitlines() if line.startswith("explr: error: ")]
    assert code == 2 and out == "" and len(errors) == 1 and "Traceback" not in err
    assert "linear_8.py" in errors[0] and "mat1 and mat2 shapes cannot be multiplied" in errors[0]
    assert "explr: inputs: float32[2, 3] (from --input-shape)" in err  # which inputs were rejected


def test_internal_error_is_one_line_and_exit_2(capsys, monkeypatch):
    def broken(loaded, *, verify):
        raise ZeroDivisionError("division by zero")
    monkeypatch.setattr(audit_cli, "run_audit", broken)
    code, out, err = run(capsys, TINY)
    errors = [line for line in err.splitlines() if line.startswith("explr: error: ")]
    assert code == 2 and out == "" and len(errors) == 1 and "Traceback" not in err
    assert "internal error while auditing" in errors[0] and "ZeroDivisionError" in errors[0]


def test_debug_shows_the_exception_instead_of_one_line():
    from explr.errors import LoadError
    with pytest.raises(LoadError, match="missing.py does not exist"):
        main(["--debug", "audit", str(MODELS / "missing.py")])


def test_unknown_format_is_a_usage_error(capsys):
    code, _, _ = run(capsys, TINY, "--format", "xml")
    assert code == 2


# ------------------------------------------------------------------------------ end to end (real analysis)

def test_text_report_end_to_end(capsys):
    code, out, err = run(capsys, TINY)
    assert code == 0, err
    assert "parameter tensors scale-invariant" in out.splitlines()[-1]
    assert "conv" in out and "verification: passed" in out


def test_json_report_matches_the_model_end_to_end(capsys):
    from explr.load import load_model
    code, out, err = run(capsys, TINY, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    model = load_model(TINY).model
    assert [(p["name"], p["shape"]) for p in doc["parameters"]] == \
        [(n, list(p.shape)) for n, p in model.named_parameters()]
    verdict = {p["name"]: p for p in doc["parameters"]}
    assert verdict["conv.weight"]["si"] and verdict["conv.weight"]["individually_si"]
    assert not verdict["fc.weight"]["si"]
    assert doc["verification"]["status"] == "passed"


def test_meta_device_end_to_end(capsys):
    code, out, err = run(capsys, TINY, "--device", "meta", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["verification"]["status"] == "skipped"
    assert {p["name"]: p["si"] for p in doc["parameters"]}["conv.weight"] is True


def test_no_normalization_warns_and_fails_on_warning(capsys):
    plain = str(MODELS / "plain_mlp.py")
    assert run(capsys, plain)[0] == 0
    code, out, _ = run(capsys, plain, "--fail-on", "warning", "--format", "json")
    assert code == 1
    assert not any(p["si"] for p in json.loads(out)["parameters"])


def test_real_subprocess(tmp_path):
    result = subprocess.run([sys.executable, "-m", "explr", "audit", TINY, "--format", "json", "--no-verify"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["schema"] == "explr.audit/1"
    bad = subprocess.run([sys.executable, "-m", "explr", "audit", str(MODELS / "syntax_error.py")],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
