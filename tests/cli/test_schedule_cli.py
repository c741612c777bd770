"""`explr schedule`: tables on stdout, JSON schema, plot, and one-line errors with exit code 2."""
import json
import os
import stat
import sys

import pytest

from explr.cli import main
from explr.fileio import write_atomic

BLOG = ["schedule", "--lr", "0.1", "--momentum", "0.9", "--weight-decay", "5e-4", "--iters-per-epoch", "391"]


def test_text_output_shows_the_blog_growth_phases_and_horizons(capsys):
    assert main(BLOG + ["--milestones", "80,120", "--epochs", "160"]) == 0
    out, err = capsys.readouterr()
    assert "growth per epoch = 1.4812" in out and "alpha = 0.99949773" in out
    assert "31280-46920" in out and "s_T = 6.3576" in out
    assert "underflow float16" in out and "overflow bfloat16" in out
    assert err == ""


def test_json_schema_and_values(capsys):
    assert main(BLOG + ["--json", "--warmup-epochs", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "explr.schedule/1"
    assert doc["growth_per_epoch"] == pytest.approx(1.4812, abs=5e-5)
    assert [p["kind"] for p in doc["phases"]] == ["warmup", "constant", "constant", "constant"]
    assert [p["start_iter"] for p in doc["phases"]] == [0, 782, 31280, 46920]
    assert set(doc["horizons"]) == {"weights_overflow_float32", "weights_overflow_bfloat16",
                                    "grads_underflow_float16", "grads_underflow_float16_loss_scaled"}
    assert doc["ln_inv_s_T"] == pytest.approx(doc["ln_inv_s_T_estimate"], rel=2e-2)


@pytest.mark.parametrize("args, message", [
    (["--lr", "0"], "lr=0.0 must be a finite number > 0"),
    (["--momentum", "1.0"], r"momentum=1.0 is outside the allowed range [0, 1)"),
    (["--weight-decay", "-1e-4"], "weight_decay=-0.0001 must be finite and >= 0"),
    (["--milestones", "120,80"], "milestones=[120, 80] must be strictly increasing epochs inside (0, 160)"),
    (["--milestones", "80,200"], "inside (0, 160)"),
    (["--milestones", "80;120"], "--milestones '80;120' must be comma-separated whole epochs"),
    (["--iters-per-epoch", "0"], "iters_per_epoch=0 must be an integer > 0"),
    (["--decay", "bogus"], "decay='bogus' is not one of"),
    (["--weight-decay", "5e-3", "--epochs", "250", "--milestones", ""], "no longer fits float64"),
])
def test_bad_values_exit_2_with_one_line(capsys, args, message):
    assert main(BLOG + args) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err and err.count("\n") == 1


def test_plot_without_matplotlib_says_how_to_install(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main(BLOG + ["--plot", str(tmp_path / "lr.png")]) == 2
    assert "pip install matplotlib" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_plot_writes_a_png(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="optional plot extra")
    target = tmp_path / "lr.png"
    assert main(BLOG + ["--warmup-epochs", "1", "--plot", str(target)]) == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["lr.png"]  # no temporary file left behind
    assert f"explr: wrote {target}" in capsys.readouterr().err


def test_plot_gets_the_same_file_mode_as_other_outputs(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="optional plot extra")
    old = os.umask(0o022)
    try:
        assert main(BLOG + ["--plot", str(tmp_path / "lr.png")]) == 0
        (tmp_path / "plain.txt").write_text("a file written by open()")
        write_atomic(tmp_path / "report.txt", "a report written by explr -o")
    finally:
        os.umask(old)
    modes = {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("lr.png", "plain.txt", "report.txt")}
    assert set(modes.values()) == {0o644}, modes  # not mkstemp's 0600


def test_huge_growth_warns_with_the_renormalization_fix(capsys):
    assert main(BLOG + ["--milestones", "", "--epochs", "430"]) == 0
    out, err = capsys.readouterr()
    assert "explr: warning: SI weight norms grow by 4.8e+36" in err and "renormalize=(low, high)" in err
    assert main(BLOG) == 0
    assert "warning" not in capsys.readouterr().err  # the blog's 160 epochs stay in range
