"""The check passes (float64, exact) on real architectures and schedules, and fails when it should."""
from __future__ import annotations

import pytest

from explr.check.api import CheckOptions, check
from explr.errors import ExplrError, UnsupportedError
from explr.lr_schedule import LRSchedule
from tests.check.helpers import DEMO_CONFIG, FIXTURES, IPE, audited, plan

FAST = CheckOptions(steps=12, batch_size=6)


@pytest.mark.parametrize("name", ["resnet_cifar", "preresnet32", "densenet_bc", "groupnorm_net"])
def test_step_decay_matches_to_round_off_on_fixture_architectures(name):
    spec, report = audited(name)
    result = check(spec, DEMO_CONFIG, si=report, options=FAST)
    assert result.passed and result.max_rel_deviation < 1e-11, result.max_rel_deviation
    assert result.phases_hit == result.phases_total == 3
    assert result.si_params == len(report.si_names) > 0
    measured, predicted = result.final_norm_ratio
    assert predicted > 1.0 and measured == pytest.approx(predicted, rel=1e-10)  # ||θ~||/||θ|| = 1/s_t
    converted_lrs = [r.lrs_converted for r in result.records]
    si_label = next(label for label in converted_lrs[0] if label.startswith("SI"))
    assert converted_lrs[1][si_label] > converted_lrs[0][si_label]  # TEXP: the SI LR grows inside a phase
    assert result.growth_per_epoch == pytest.approx(1.4812, abs=1e-4)


def test_warmup_then_cosine_matches(tmp_path):
    config = tmp_path / "warmup_cosine.yaml"
    config.write_text("explr: 1\noptimizer: {name: sgd, lr: 0.2, momentum: 0.9, dampening: 0.3, weight_decay: 5.0e-4}\n"
                      "schedule: {unit: epoch, decay: cosine, warmup: 5, warmup_factor: 0.0, decay_start: 5}\n"
                      "training: {epochs: 100, iters_per_epoch: 50}\n")
    spec, report = audited("resnet_cifar")
    result = check(spec, str(config), si=report, options=CheckOptions(steps=16, batch_size=6))
    assert result.passed and result.max_rel_deviation < 1e-11
    lrs = [r.lrs_original["wd 0.0005"] for r in result.records]
    assert lrs[0] == 0.0 and max(lrs) == pytest.approx(0.2) and lrs[-1] < 0.05  # warmup from 0, then cosine
    assert "warmup end" in "\n".join(result.compression)


def test_config_with_warmup_and_milestones_matches():
    spec, report = audited("resnet_cifar")
    config = str(FIXTURES / "configs" / "explr" / "imagenet_warmup_step.yaml")
    result = check(spec, config, si=report, options=CheckOptions(steps=20, batch_size=6))
    assert result.format == "explr" and result.passed and result.max_rel_deviation < 1e-11
    assert result.phases_hit == result.phases_total >= 4  # warmup end + three milestones


def test_nesterov_fails_with_the_nesterov_explanation():
    spec, report = audited("resnet_cifar")
    result = check(spec, plan(nesterov=True), si=report, options=CheckOptions(steps=12, batch_size=6, approximate=True))
    assert not result.passed and result.max_rel_deviation > 1e2 * result.tolerance
    assert [code for code, _ in result.diagnosis.causes] == ["nesterov"]
    assert result.diagnosis.jump_step is not None and result.diagnosis.first_exceeded_step is not None
    assert any("Nesterov" in note for note in result.notes)
    assert "trajectories themselves differ" in result.eval_mode.advice  # recalibrating cannot fix training


def test_nesterov_without_approximate_is_refused_like_convert_refuses_it():
    spec, report = audited("resnet_cifar")
    with pytest.raises(UnsupportedError, match="Nesterov.*--approximate"):
        check(spec, plan(nesterov=True), si=report, options=FAST)


def test_a_non_si_parameter_forced_into_the_si_set_fails_and_is_named():
    spec, report = audited("resnet_cifar")
    head = [n for n in ("fc.weight", "linear.weight", "head.weight") if n in {p.name for p in report.parameters}]
    forced = report.si_names + head
    result = check(spec, DEMO_CONFIG, si=forced, options=FAST)
    assert not result.passed
    causes = dict(result.diagnosis.causes)
    assert list(causes) == ["wrong_si"] and head[0] in causes["wrong_si"]


def test_adamw_fails_as_a_non_sgd_optimizer():
    spec, report = audited("resnet_cifar")
    adamw = plan(optimizer="adamw", lr=LRSchedule(1e-3, 100, decay="cosine"), decay=plan().decay.__class__(0.05))
    result = check(spec, adamw, si=report, options=CheckOptions(steps=12, batch_size=6, approximate=True))
    assert not result.passed and [c for c, _ in result.diagnosis.causes] == ["non_sgd"]
    assert result.final_norm_ratio[1] is None  # no exact 1/s_t prediction for Adam


def test_gradient_clipping_fails_with_the_clipping_explanation():
    spec, report = audited("resnet_cifar")
    result = check(spec, plan(grad_clip_norm=0.05), si=report,
                   options=CheckOptions(steps=12, batch_size=6, approximate=True))
    assert not result.passed and [c for c, _ in result.diagnosis.causes] == ["clipping"]
    assert any(r.clipped[0] for r in result.records)


def test_the_eps_blur_is_visible_with_keep_eps():
    """With the model's eps (1e-5) the runs differ by O(eps/σ²): far above round-off, so removing it matters."""
    spec, report = audited("resnet_cifar")
    kept = check(spec, DEMO_CONFIG, si=report, options=CheckOptions(steps=12, batch_size=6, keep_eps=True,
                                                                    tolerance=1e-3))
    assert kept.passed and kept.max_rel_deviation > 1e-11 and any("eps kept" in n for n in kept.notes)


def test_eval_mode_needs_recalibration_with_batchnorm_and_not_with_groupnorm():
    spec, report = audited("resnet_cifar")
    bn = check(spec, DEMO_CONFIG, si=report, options=FAST).eval_mode
    assert bn.running_stats and bn.expect == "recalibrated"
    assert bn.deviation_before > 1e-6 and bn.deviation_after < 1e-11
    spec, report = audited("groupnorm_net")
    gn = check(spec, DEMO_CONFIG, si=report, options=FAST).eval_mode
    assert not gn.running_stats and gn.expect == "same_as_train_mode" and gn.deviation_before is None


def test_float32_uses_a_measured_noise_floor():
    spec, report = audited("resnet_cifar")
    result = check(spec, DEMO_CONFIG, si=report, options=CheckOptions(steps=12, batch_size=6, dtype="float32"))
    assert result.dtype == "float32" and result.noise_floor is not None and result.noise_floor > 0
    assert result.tolerance == max(10 * result.noise_floor, 1e-6) and result.passed
    assert all(r.noise is not None for r in result.records)


def test_float32_still_catches_a_wrong_si_set_above_its_noise_floor():
    spec, report = audited("resnet_cifar")
    head = [p.name for p in report.parameters if not p.si and p.name.endswith("weight")][-1:]
    result = check(spec, DEMO_CONFIG, si=report.si_names + head,
                   options=CheckOptions(steps=12, batch_size=6, dtype="float32"))
    assert not result.passed and result.max_rel_deviation > 5 * result.tolerance
    assert [c for c, _ in result.diagnosis.causes] == ["wrong_si"]


# float32, batch 4, LR 0.1 throughout: the 1-ulp twin flips a ReLU mask at step 7 and runs off to > 1e-2,
# while the converted run stays at round-off (~1e-6); 10 x the twin's maximum would prove nothing
RUNAWAY_TWIN = CheckOptions(steps=12, batch_size=4, dtype="float32", compress=False)


def test_float32_passes_against_the_round_off_floor_when_the_twin_jumps():
    spec, report = audited("resnet_cifar")
    result = check(spec, DEMO_CONFIG, si=report, options=RUNAWAY_TWIN)
    assert result.passed, (result.max_rel_deviation, result.tolerance)  # before: tolerance > 0.1, inconclusive
    twin = max(r.noise for r in result.records)
    assert twin > 1e-2 and result.noise_jump_step is not None and result.noise_jump_max == twin
    before = max(r.noise for r in result.records if r.step < result.noise_jump_step)
    assert result.noise_floor == before and result.tolerance == max(10 * before, 1e-6) < 1e-4
    assert result.outcome == "pass" and result.max_rel_deviation <= result.tolerance
    assert result.to_json()["noise_jump"] == {"step": result.noise_jump_step, "max_noise": twin}


def test_float32_still_fails_a_wrong_si_set_when_the_twin_jumps():
    spec, report = audited("resnet_cifar")
    head = [p.name for p in report.parameters if not p.si and p.name.endswith("weight")][-1:]
    result = check(spec, DEMO_CONFIG, si=report.si_names + head, options=RUNAWAY_TWIN)
    assert result.noise_jump_step is not None and result.outcome == "fail" and not result.passed
    assert [c for c, _ in result.diagnosis.causes] == ["wrong_si"]


def test_a_model_with_nothing_scale_invariant_has_nothing_to_convert():
    from tests.check.helpers import model_path
    with pytest.raises(ExplrError, match="nothing to convert"):
        check(model_path("no_norm"), DEMO_CONFIG, options=FAST)


def test_nan_during_training_stops_and_names_the_step_and_run():
    spec, report = audited("resnet_cifar")
    huge = plan(lr=LRSchedule(1e30, 160 * IPE, decay="constant"), decay=plan().decay.__class__(0.0))
    with pytest.raises(ExplrError, match=r"(loss became|outputs became).* step \d+"):
        check(spec, huge, si=report, options=FAST)


def test_what_the_full_length_run_would_hit_is_noted_from_the_horizons():
    spec, report = audited("resnet_cifar")
    fp16 = check(spec, plan(precision="16-true"), si=report, options=CheckOptions(steps=6, batch_size=4))
    assert any("underflow float16 (no loss scaling) from iteration 14,789 (epoch 38)" in n for n in fp16.notes)
    fp32 = check(spec, plan(), si=report, options=CheckOptions(steps=6, batch_size=4))
    assert not any("full run" in n for n in fp32.notes)  # 160 CIFAR epochs stay far from float32 overflow
