"""The differential-privacy mechanism: clamp each participant's counts, add discrete Laplace noise (OpenDP).

A participant's contribution is a vector of counts, one per bucket, each clamped to ``[0, bound]``. Adding
or removing one participant changes the summed vector by at most ``bound`` in each of ``k`` buckets: its L1
sensitivity is ``k × bound``. OpenDP's ``make_laplace`` over integer vectors (the discrete Laplace, or
two-sided geometric, mechanism) with scale ``b = sensitivity / ε`` is ε-differentially private for that
sensitivity (δ = 0); the measurement's own privacy map is checked to be at most ε before any noise is drawn.

The noise in each bucket has mean 0 and mean absolute value ``2r / (1 − r²)`` with ``r = e^(−1/b)``
(about ``b`` when ``b`` is large): :func:`expected_abs_error`, what ``bench/insights.py`` measures against.
The API and the benchmark call the same :func:`release`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MECHANISM = "discrete_laplace"


@dataclass(frozen=True)
class Noisy:
    counts: list[int]
    mechanism: str
    epsilon: float
    delta: float
    sensitivity: float
    scale: float


def sensitivity(buckets: int, bound: int) -> int:
    """The L1 distance one participant can move the histogram (added or removed)."""
    return buckets * bound


def clamp(counts: Mapping[str, int], buckets: Sequence[str], bound: int) -> list[int]:
    """One participant's counts in bucket order, each clamped to ``[0, bound]`` (a bucket it lacks is 0)."""
    return [min(max(int(counts.get(b, 0)), 0), bound) for b in buckets]


def scale_for(sens: float, epsilon: float) -> float:
    return sens / epsilon


def expected_abs_error(scale: float) -> float:
    """The mean absolute value of discrete Laplace noise of this scale (``P(k) ∝ e^(−|k|/scale)``)."""
    r = math.exp(-1.0 / scale)
    return 2.0 * r / (1.0 - r * r)


def release(totals: Sequence[int], *, sens: float, epsilon: float) -> Noisy:
    """The summed, clamped ``totals`` with discrete Laplace noise calibrated to ``sens`` and ``epsilon``."""
    import opendp.prelude as dp  # imported on first use: the library is large and most processes never release

    dp.enable_features("contrib")
    space = dp.vector_domain(dp.atom_domain(T="i64"), size=len(totals)), dp.l1_distance(T="i64")
    scale = scale_for(sens, epsilon)
    measurement = dp.m.make_laplace(*space, scale=scale)
    # OpenDP rounds its privacy map conservatively: widen the scale by ulps until ε is not exceeded.
    while measurement.map(int(sens)) > epsilon:  # type: ignore[no-untyped-call]
        scale = math.nextafter(scale, math.inf)
        measurement = dp.m.make_laplace(*space, scale=scale)
    noisy = [int(v) for v in measurement([int(v) for v in totals])]
    return Noisy(counts=noisy, mechanism=MECHANISM, epsilon=epsilon, delta=0.0, sensitivity=sens, scale=scale)
