"""The statistics a comparison needs: mean and spread over seeds, an interval on a difference, calibration.

- :func:`mean_std`: mean and sample standard deviation (n - 1 in the denominator) over seeds;
- :func:`welch_interval`: the difference of two means with a 95% confidence interval by Welch's t
  (unequal variances; Welch, 1947), the Student-t quantile from the standard table;
- :func:`paired_interval`: the same difference when both arms ran with the same seeds (same
  initialization, data order and augmentation draws): the interval comes from the per-seed
  differences, Student's t on n - 1 degrees of freedom. Seed-to-seed variation that both arms share
  cancels, so it is usually much narrower than Welch's;
- :func:`expected_calibration_error`: ECE with equal-width confidence bins (Naeini et al., 2015;
  Guo et al., 2017, "On Calibration of Modern Neural Networks"), and the per-bin numbers behind a
  reliability diagram.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

# Two-sided 95% quantiles of Student's t, t_{0.975}(df), from the standard table; between entries the
# quantile is interpolated linearly in 1/df, beyond the last it is the normal's 1.960.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t_quantile_975(df: float) -> float:
    """t_{0.975} for ``df`` degrees of freedom (df >= 1; fractional df from Welch's formula allowed)."""
    if df >= 120:
        return 1.960 + (1.980 - 1.960) * 120 / df
    keys = sorted(T_975)
    df = max(1.0, df)
    for low, high in zip(keys, keys[1:]):
        if low <= df <= high:
            weight = (1 / low - 1 / df) / (1 / low - 1 / high)
            return T_975[low] + weight * (T_975[high] - T_975[low])
    return T_975[120]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


def paired_interval(treatment: dict[int, float], baseline: dict[int, float]
                    ) -> tuple[Optional[float], Optional[float], Optional[float], int]:
    """Mean of ``treatment[s] - baseline[s]`` over the seeds both have, its 95% interval, and the number of pairs.

    (None, None, None, 0) without a common seed; the interval is (None, None) with a single pair.
    """
    differences = [treatment[seed] - baseline[seed] for seed in sorted(set(treatment) & set(baseline))]
    n = len(differences)
    if n == 0:
        return None, None, None, 0
    mean, std = mean_std(differences)
    if n < 2:
        return mean, None, None, n
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return mean, mean - half, mean + half, n


def welch_interval(treatment: Sequence[float], baseline: Sequence[float]
                   ) -> tuple[float, Optional[float], Optional[float]]:
    """``mean(treatment) - mean(baseline)`` and its 95% interval (None, None with fewer than 2 values a side)."""
    (m1, s1), (m0, s0) = mean_std(treatment), mean_std(baseline)
    difference = m1 - m0
    n1, n0 = len(treatment), len(baseline)
    if n1 < 2 or n0 < 2:
        return difference, None, None
    v1, v0 = s1 ** 2 / n1, s0 ** 2 / n0
    error = math.sqrt(v1 + v0)
    if error == 0:
        return difference, difference, difference
    df = (v1 + v0) ** 2 / (v1 ** 2 / (n1 - 1) + v0 ** 2 / (n0 - 1))  # Welch-Satterthwaite
    half = t_quantile_975(df) * error
    return difference, difference - half, difference + half


def calibration_bins(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = 15
                     ) -> list[dict[str, float]]:
    """Per equal-width confidence bin: count, mean confidence, accuracy (probabilities (N, C), labels (N,))."""
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    result = []
    for i in range(bins):
        # (low, high], the first bin also takes confidence exactly 0
        inside = (confidence > edges[i]) & (confidence <= edges[i + 1]) if i else (confidence <= edges[1])
        count = int(inside.sum())
        result.append({"low": float(edges[i]), "high": float(edges[i + 1]), "count": count,
                       "confidence": float(confidence[inside].double().mean()) if count else 0.0,
                       "accuracy": float(correct[inside].mean()) if count else 0.0})
    return result


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """ECE = sum over bins of (bin share of samples) x |accuracy - mean confidence|, in [0, 1]."""
    total = len(labels)
    return sum(b["count"] / total * abs(b["accuracy"] - b["confidence"])
               for b in calibration_bins(probabilities, labels, bins))
