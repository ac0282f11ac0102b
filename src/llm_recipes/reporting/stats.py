"""Statistics for reports, all from scipy: the binomial test against chance, t intervals over seeds, bootstrap
intervals, and the verdict of a comparative claim computed from paired differences across seeds.

A verdict is never typed by hand: `verdict(better, worse)` takes the per-seed values of the two arms (paired by seed)
and says `reproduced` when the 95 % interval of the mean difference excludes 0 in the claimed direction,
`contradicted` when it excludes 0 the other way, and `inconclusive` otherwise (including fewer than 2 seeds).
"""

import math

import numpy as np
from scipy import stats

REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"


def binomial_p_above(correct, n, p):
    """One-sided exact binomial test: P(X >= correct) for X ~ Binomial(n, p) (scipy; exact for any n)."""
    if n == 0:
        return 1.0
    return float(stats.binomtest(int(correct), int(n), p, alternative="greater").pvalue)


def proportion_interval(correct, n, confidence=0.95):
    """Wilson interval of an accuracy (scipy's binomtest)."""
    if n == 0:
        return (float("nan"), float("nan"))
    ci = stats.binomtest(int(correct), int(n)).proportion_ci(confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def t_interval(values, confidence=0.95):
    """(mean, low, high) of the mean with a Student t interval; low = high = mean for a single value."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    if len(x) == 0:
        return (float("nan"), float("nan"), float("nan"))
    mean = float(x.mean())
    if len(x) < 2 or float(x.std(ddof=1)) == 0.0:
        return (mean, mean, mean)
    low, high = stats.t.interval(confidence, len(x) - 1, loc=mean, scale=stats.sem(x))
    return (mean, float(low), float(high))


def bootstrap_interval(values, statistic=np.mean, confidence=0.95, n_resamples=2000, seed=0):
    """(estimate, low, high) by scipy's BCa bootstrap (percentile when BCa is degenerate)."""
    x = np.asarray(values, dtype=float)
    estimate = float(statistic(x))
    if len(x) < 2 or np.all(x == x[0]):
        return (estimate, estimate, estimate)
    rng = np.random.default_rng(seed)
    try:
        res = stats.bootstrap((x,), statistic, confidence_level=confidence, n_resamples=n_resamples,
                              random_state=rng, method="BCa")
    except Exception:  # BCa needs a non-degenerate jackknife
        res = stats.bootstrap((x,), statistic, confidence_level=confidence, n_resamples=n_resamples,
                              random_state=rng, method="percentile")
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return (estimate, estimate, estimate)
    return (estimate, low, high)


def verdict(better, worse, confidence=0.95, higher_is_better=True, margin=0.0):
    """The claim "`better` beats `worse`" from per-seed values paired by position (seed i of each arm).
    Returns {verdict, mean_difference, low, high, seeds} where difference = better - worse (sign flipped when lower
    is better, e.g. a loss), so a positive difference always supports the claim. With `margin` > 0 the claim is
    non-inferiority, "`better` is at most `margin` worse than `worse`": reproduced when the interval lies above
    -margin, contradicted when it lies below."""
    pairs = [(b, w) for b, w in zip(better, worse) if b is not None and w is not None]
    sign = 1.0 if higher_is_better else -1.0
    diffs = [sign * (b - w) for b, w in pairs]
    mean, low, high = t_interval(diffs, confidence)
    if len(diffs) < 2:
        result = INCONCLUSIVE
    elif low > -margin:
        result = REPRODUCED
    elif high < -margin:
        result = CONTRADICTED
    else:
        result = INCONCLUSIVE
    return {"verdict": result, "mean_difference": mean, "low": low, "high": high, "seeds": len(diffs),
            "confidence": confidence, **({"margin": margin} if margin else {})}


def format_interval(mean, low, high, digits=3):
    if not math.isfinite(mean):
        return "-"
    if low == high:
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} [{low:.{digits}g}, {high:.{digits}g}]"
