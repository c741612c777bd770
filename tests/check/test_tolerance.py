"""The noise floor is the 1-ulp twin's round-off, split at its first discrete jump; the verdict reads it honestly."""
from __future__ import annotations

from explr.check.tolerance import FAIL, INCONCLUSIVE, PASS, NoiseFloor, Tolerance, noise_floor_of, verdict

# the twin of resnet_cifar, float32, batch 4 (measured): smooth round-off, then a ReLU mask flip at step 7
TWIN = [(1, 1.3e-6), (2, 2.8e-6), (3, 3.1e-6), (4, 3.4e-6), (5, 4.4e-6), (6, 4.3e-6), (7, 2.9e-4), (8, 1.1e-3),
        (9, 2.5e-3), (10, 1.2e-1), (11, 5.0e-2)]
TOL = Tolerance(4.4e-5, "10 x 4.4e-6")


def test_the_floor_is_the_twins_maximum_before_its_first_jump():
    assert noise_floor_of(TWIN) == NoiseFloor(4.4e-6, 7, 1.2e-1)


def test_smooth_growth_is_no_jump():
    smooth = [(t, 1e-6 * 1.9 ** t) for t in range(1, 12)]
    assert noise_floor_of(smooth) == NoiseFloor(1e-6 * 1.9 ** 11)


def test_a_twin_identical_at_first_then_off_is_no_jump_from_zero():
    assert noise_floor_of([(1, 0.0), (2, 0.0), (3, 2e-7), (4, 3e-7)]) == NoiseFloor(3e-7)


def test_within_the_tolerance_passes_even_though_the_twin_ran_away():
    assert verdict([(t, 1e-5) for t in range(1, 12)], TOL, noise_floor_of(TWIN)) == PASS


def test_exceeding_before_the_twin_jumped_fails():
    wrong = [(1, 4.7e-5), (2, 1.4e-4)] + [(t, 2e-2) for t in range(3, 12)]  # a wrong SI set: off from step 1
    assert verdict(wrong, TOL, noise_floor_of(TWIN)) == FAIL


def test_exceeding_only_after_the_twin_jumped_and_within_it_is_inconclusive():
    flipped = [(t, 1e-5) for t in range(1, 9)] + [(9, 3e-3), (10, 5e-2), (11, 9e-2)]
    assert verdict(flipped, TOL, noise_floor_of(TWIN)) == INCONCLUSIVE


def test_exceeding_after_the_jump_beyond_the_twins_own_deviation_fails():
    far = [(t, 1e-5) for t in range(1, 9)] + [(9, 3e-3), (10, 0.5), (11, 0.9)]
    assert verdict(far, TOL, noise_floor_of(TWIN)) == FAIL


def test_no_jump_and_float64_judge_by_the_tolerance_alone():
    assert verdict([(1, 2e-5), (2, 5e-5)], TOL, NoiseFloor(4.4e-6)) == FAIL
    assert verdict([(1, 2e-5), (2, 5e-5)], TOL, None) == FAIL
    assert verdict([(1, 2e-13)], Tolerance(1e-6, "float64"), None) == PASS


def test_a_tolerance_too_large_to_prove_anything_is_inconclusive():
    assert verdict([(1, 1e-3)], Tolerance(5e-2, "bf16"), NoiseFloor(5e-3)) == INCONCLUSIVE
