"""Statistics shared by the benchmarks and the soak's report: pure, so that unit tests import them without a site
(bench/common_bench.py reads the site's env when imported)."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
