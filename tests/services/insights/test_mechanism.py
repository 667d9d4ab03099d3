"""The mechanism: clamping bounds each participant, and the measured noise matches the theory."""

from __future__ import annotations

import math

import pytest

from engramdb.services.insights import mechanism


def test_clamp_bounds_each_bucket_and_orders_by_bucket() -> None:
    assert mechanism.clamp({"b": 7, "a": 1, "zz": 99, "c": -3}, ["a", "b", "c", "d"], 5) == [1, 5, 0, 0]
    assert mechanism.sensitivity(4, 5) == 20


def test_expected_error_approaches_the_scale() -> None:
    assert mechanism.expected_abs_error(100.0) == pytest.approx(100.0, rel=1e-3)
    r = math.exp(-1.0)
    assert mechanism.expected_abs_error(1.0) == pytest.approx(2 * r / (1 - r * r))


@pytest.mark.parametrize("epsilon", [0.5, 4.0])
def test_measured_error_matches_the_theory(epsilon: float) -> None:
    """4,000 noisy buckets: the mean absolute error is within 10% of the prediction (about 6 standard errors)."""
    true = [50] * 4_000
    noisy = mechanism.release(true, sens=10, epsilon=epsilon)
    assert noisy.scale == pytest.approx(10 / epsilon) and noisy.delta == 0.0 and noisy.mechanism == "discrete_laplace"
    errors = [n - v for n, v in zip(noisy.counts, true, strict=True)]
    mae = sum(abs(e) for e in errors) / len(errors)
    assert mae == pytest.approx(mechanism.expected_abs_error(noisy.scale), rel=0.10)
    assert abs(sum(errors) / len(errors)) < 0.1 * noisy.scale  # unbiased


@pytest.mark.parametrize(("sens", "epsilon"), [(3, 1 / 3), (50, 0.3), (7, 0.1)])
def test_the_scale_never_spends_more_than_epsilon(sens: int, epsilon: float) -> None:
    """OpenDP's own privacy map of the measurement released with is at most ε (sens / ε can round under)."""
    import opendp.prelude as dp

    noisy = mechanism.release([0, 0, 0], sens=sens, epsilon=epsilon)
    space = dp.vector_domain(dp.atom_domain(T="i64"), size=3), dp.l1_distance(T="i64")
    assert dp.m.make_laplace(*space, scale=noisy.scale).map(sens) <= epsilon
