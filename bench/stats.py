"""Statistics shared by the benchmark drivers (standard library only)."""


def percentile(sorted_values, p):
    """The nearest-rank p-th percentile of an ascending list; NaN when it is empty."""
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]
