"""Small statistics for the analysis: Pearson's chi-square test of uniformity (pure).

Pipeline: used by spread.py (the spread of Service traffic over endpoints).

The p-value is the chi-square survival function, i.e. the regularized upper incomplete gamma
function Q(dof/2, x/2). scipy computes it when it is installed; otherwise a small
implementation with math does (series for x < a + 1, Lentz's continued fraction beyond, as
in Numerical Recipes), accurate to about 1e-12 — no heavy dependency needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

_EPS = 1e-15
_TINY = 1e-300
_MAX_ITER = 10_000


def _lower_series(a: float, x: float) -> float:
    """Regularized lower gamma P(a, x) by its series (x < a + 1)."""
    term = total = 1.0 / a
    ap = a
    for _ in range(_MAX_ITER):
        ap += 1.0
        term *= x / ap
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _upper_fraction(a: float, x: float) -> float:
    """Regularized upper gamma Q(a, x) by its continued fraction (x >= a + 1)."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITER):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def regularized_upper_gamma(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a), for a > 0 and x >= 0."""
    if a <= 0:
        raise ValueError("a must be positive")
    if x <= 0:
        return 1.0
    if x < a + 1.0:
        return max(0.0, min(1.0, 1.0 - _lower_series(a, x)))
    return max(0.0, min(1.0, _upper_fraction(a, x)))


def chi2_sf(statistic: float, dof: int) -> float:
    """P(X >= statistic) for X ~ chi-square with `dof` degrees of freedom."""
    if dof < 1:
        raise ValueError("dof must be at least 1")
    try:
        from scipy.stats import chi2  # optional: used when installed
    except ImportError:
        return regularized_upper_gamma(dof / 2.0, statistic / 2.0)
    return float(chi2.sf(statistic, dof))


@dataclass(frozen=True)
class ChiSquare:
    """Pearson's test that counts are uniform over their categories."""

    statistic: float  # NaN when the test does not apply (fewer than 2 categories or no count)
    dof: int
    p_value: float  # NaN when the test does not apply
    expected: float  # count per category under uniformity

    def uniform(self, alpha: float = 0.05) -> str:
        """'yes' (uniformity not rejected at `alpha`), 'no', or 'n/a'."""
        if math.isnan(self.p_value):
            return "n/a"
        return "yes" if self.p_value >= alpha else "no"


def chisquare_uniform(counts: Sequence[int]) -> ChiSquare:
    """Chi-square statistic and p-value of `counts` against the uniform distribution."""
    counts = [int(c) for c in counts]
    total, k = sum(counts), len(counts)
    if k < 2 or total <= 0:
        return ChiSquare(float("nan"), max(k - 1, 0), float("nan"), total / k if k else float("nan"))
    expected = total / k
    statistic = sum((c - expected) ** 2 for c in counts) / expected
    return ChiSquare(statistic, k - 1, chi2_sf(statistic, k - 1), expected)
