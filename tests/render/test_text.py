"""The rich text renderer: grouped table, findings, verification and summary; no cut names off a TTY."""
from explr.audit_report import AuditReport, Group, ParamVerdict, Verification
from explr.render.text import render_text
from explr.rules.registry import finding

LONG_MODULE = "encoder.stages.3.blocks.11.attention.output_projection_with_a_very_long_descriptive_name"


def report(findings=(), verification=Verification("skipped", None, "meta device")) -> AuditReport:
    params = [
        ParamVerdict("stem.weight", (16, 3, 3, 3), 432, True, False, 1, "only jointly: writes the residual stream"),
        ParamVerdict(f"{LONG_MODULE}.weight", (16, 16), 256, True, True, 0, "normalized by norm"),
        ParamVerdict(f"{LONG_MODULE}.bias", (16,), 16, False, False, None, "model output"),
        ParamVerdict("head.scale", (), 1, False, False, None, "model output"),
    ]
    groups = [Group(0, (params[1].name,), ("norm",)), Group(1, ("stem.weight", "x.weight"), ("bn",))]
    return AuditReport("net.py", params, groups, list(findings), verification, inputs="float32[2, 3, 32, 32] (inferred)")


def test_summary_inputs_and_verification_lines():
    out = render_text(report())
    assert report().summary() in out
    assert "2/4 parameter tensors scale-invariant" in out
    assert "inputs: float32[2, 3, 32, 32] (inferred)" in out
    assert "verification: skipped\n  meta device" in out
    assert "findings: none" in out


def test_names_are_never_cut_without_a_terminal():
    out = render_text(report())
    lines = out.splitlines()
    assert any(LONG_MODULE in line for line in lines), "module name truncated or folded"
    assert "…" not in out and "..." not in out
    assert "\x1b[" not in out  # no colour codes in logs
    assert all(line == line.rstrip() for line in lines)  # no column padding at line ends


def test_table_groups_rows_by_module():
    out = render_text(report())
    assert out.count(LONG_MODULE) == 1  # the module is named once, on its first row
    assert "16x3x3x3" in out and "scalar" in out


def test_findings_most_severe_first_with_colour_on_request():
    found = [finding("EXP107", "head keeps weight decay", module="head"),
             finding("EXP109", "scaling group 1 changed the output", module="stem")]
    plain = render_text(report(found, Verification("failed", 0.2)))
    assert plain.index("EXP109") < plain.index("EXP107")
    assert "verification: failed (max relative error 2.00e-01)" in plain
    coloured = render_text(report(found), color=True, width=200)
    assert "\x1b[" in coloured


def test_narrow_terminal_folds_instead_of_truncating():
    lines = render_text(report(), width=60).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("encoder"))
    folded = ""
    for line in lines[start:]:
        if not line or line[0] == " ":
            break
        folded += line.split()[0]
    assert folded == LONG_MODULE
    assert any("individually" in line for line in lines)


def test_repeated_findings_collapse_into_one_line_with_count_and_modules():
    affine = "{m}.weight, {m}.bias (batch_norm affine of {m}) are jointly scale-invariant"
    found = [finding("EXP106", affine.format(m=m), module=m) for m in ("bn1", "layer1.0.bn1", "layer1.0.bn2")]
    found.append(finding("EXP107", "head.weight reaches the output", module="head"))
    out = render_text(report(found))
    assert out.count("EXP106") == 1
    assert ("3 modules (bn1, layer1.0.bn1, layer1.0.bn2): <module>.weight, <module>.bias (batch_norm affine of "
            "<module>)") in out
    assert "head: head.weight reaches the output" in out  # a single finding keeps its own words


def test_different_messages_of_one_rule_stay_separate():
    found = [finding("EXP103", "group 1: a, b only jointly", module="bn1"),
             finding("EXP103", "group 2: c, d only jointly", module="layer2")]
    out = render_text(report(found))
    assert out.count("EXP103") == 2 and "modules (" not in out
