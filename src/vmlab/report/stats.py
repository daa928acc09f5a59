"""Statistics that survive noise: medians with min/max and the sample count."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from vmlab.report.model import Summary


def summarize(samples: Sequence[float]) -> Summary:
    """Summary of raw samples; an empty list is a programming error, not a zero."""
    if not samples:
        raise ValueError("cannot summarize an empty list of samples")
    ordered = sorted(float(s) for s in samples)
    q1, q3 = (ordered[0], ordered[-1]) if len(ordered) < 2 else _quartiles(ordered)
    return Summary(
        n=len(ordered),
        median=statistics.median(ordered),
        min=ordered[0],
        max=ordered[-1],
        iqr=q3 - q1,
    )


def _quartiles(ordered: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(ordered, n=4, method="inclusive")
    return qs[0], qs[2]
