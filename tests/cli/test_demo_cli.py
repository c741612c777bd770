"""`explr demo`: audit -> convert -> check on bundled files; a reduced run via --steps keeps the test fast."""
from __future__ import annotations

from explr.cli import main


def test_demo_runs_end_to_end_and_prints_the_blogs_growth_and_the_match(capsys):
    code = main(["demo", "--steps", "6", "--check-batch-size", "4"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "[1/3] explr audit preresnet32.py" in out and "scale-invariant" in out
    assert "×1.4812 per epoch (the blog's 1.481)" in out
    assert "[3/3] explr check" in out and "PASSED" in out and "trajectories match" in out
    assert "schedule compressed 62,560 iterations -> 6 steps" in err


def test_demo_plot_writes_the_check_figure(capsys, tmp_path):
    out = tmp_path / "demo.png"
    code = main(["demo", "--steps", "6", "--check-batch-size", "4", "--plot", str(out)])
    assert code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}" in capsys.readouterr().err


def test_demo_plot_into_a_missing_directory_is_one_line_exit_2(capsys, tmp_path):
    code = main(["demo", "--steps", "6", "--plot", str(tmp_path / "nowhere" / "demo.png")])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1
