"""Near-copies of raw samples: sorted, rescaled, compared on a log scale."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from vmlab.grade.nearcopy.pair import NearCopy

if TYPE_CHECKING:
    from vmlab.report.model import Report


# The distance of two sample vectors of one measurement (same path, same length): sort both, take
# the log ratio of each pair of order statistics, and the half-width of their range. It is the
# smallest e such that, for one scale factor s, the i-th smallest of b lies within s * exp(+-e) of
# the i-th smallest of a: reordering and scaling cost nothing, jitter is what is measured.
# A copy with every sample moved by under 1 % is at most 0.0100 away (`jitter_bound`), however it
# was shuffled and scaled. Honest warmup re-runs on one host (20 runs, 190 pairs, measured for
# docs/grading.md, Near-copies) were never closer than 0.0344 on a 20-sample vector, nor than 0.0549 on
# both of a pair's. 0.015 catches every copy nudged by up to 1.5 % and leaves the closest honest
# vector 2.3 times as far.
SAMPLE_THRESHOLD = 0.015
# Evidence needed: close vectors with this many degrees of freedom in all (samples minus one per
# vector, one being spent on the scale). Short vectors are close by chance: of 45 honest pairs of
# kvm-api `own` runs (3 samples) one was 0.0048 apart, of 190 warmup `uname` pairs (3) one 0.0047.
# Resampling this host's quiet warmup runs, a 20-sample vector came within 0.015 of another in about
# 1 of 10,000 pairs; two of them (38) make a false flag in a class of 500 (124,750 pairs) unlikely
# (about 5e-9 per pair, taking the two as independent).
MIN_DOF = 30


def jitter_bound(jitter: float) -> float:
    """The largest distance of a copy whose every sample is moved by less than `jitter` (0.01 = 1 %).

    The i-th smallest of the copy lies within s * (1 +- jitter) of the i-th smallest original (moving
    every value within a band moves every order statistic within it), so all log ratios lie in
    [log s + log(1 - jitter), log s + log(1 + jitter)]: half that width bounds the distance."""
    return (math.log1p(jitter) - math.log1p(-jitter)) / 2


def sample_vectors(report: Report) -> dict[str, list[float]]:
    """Every raw sample vector worth comparing, by its path (`id`, `id.variant`, `....stages.name`).

    Only vectors of two or more values that are not all equal, as `handins.fingerprint` takes them: a
    constant vector (a failed run's zeros) repeats by chance. Values must be positive and finite
    (timings) to be compared as ratios."""
    out: dict[str, list[float]] = {}
    for where, exp in report.each_experiment():
        series = [(where, exp.samples)]
        series += [(f"{where}.stages.{name}", m.samples) for name, m in exp.stages.items()]
        for path, s in series:
            if len(s) >= 2 and len(set(s)) > 1 and all(x > 0 and math.isfinite(x) for x in s):
                out[path] = [float(x) for x in s]
    return out


def vector_distance(x: list[float], y: list[float]) -> tuple[float, float]:
    """(distance, scale): how far apart two equally long positive vectors are (see SAMPLE_THRESHOLD),
    and the factor s with which y is x sorted, within s * exp(+-distance)."""
    diff = [math.log(b) - math.log(a) for a, b in zip(sorted(x), sorted(y), strict=True)]
    return (max(diff) - min(diff)) / 2, math.exp((max(diff) + min(diff)) / 2)


def sample_near_copies(
    samples: dict[str, dict[str, list[float]]],
    threshold: float = SAMPLE_THRESHOLD,
) -> list[NearCopy]:
    """Pairs of hand-ins whose raw samples are one set of numbers, jittered, shuffled or scaled.

    samples: hand-in key -> {measurement path -> raw sample vector}. Two hand-ins are compared on the
    vectors they share (same path, same length); a vector is close when `vector_distance` is at most
    `threshold`, and a pair is flagged when its close vectors have at least MIN_DOF degrees of freedom.
    score = 1 - the largest distance among them (0.99: every sample agrees to about 1 %).

    A vector that is another of the same report rescaled (a stage derived as samples / exits) is no
    new evidence and counts once. Fast for a class: per (path, length) one matrix product gives every
    pair's RMS difference, a lower bound of the distance, and only pairs under the threshold are
    looked at element by element."""
    import numpy as np

    keys = sorted(samples)
    raw: dict[tuple[str, int], list[tuple[int, list[float]]]] = defaultdict(list)
    for i, key in enumerate(keys):
        for path, vec in samples[key].items():
            if len(vec) >= 2 and min(vec) > 0 and max(vec) > min(vec) and all(map(math.isfinite, vec)):
                raw[(path, len(vec))].append((i, vec))
    buckets: dict[tuple[str, int], tuple[Any, Any]] = {}
    seen: set[tuple[int, bytes]] = set()  # (hand-in, shape): a rescaled twin in one report counts once
    for bucket, members in sorted(raw.items()):
        z = np.log(np.sort(np.array([v for _i, v in members], dtype=np.float64), axis=1))
        z -= z.mean(axis=1, keepdims=True)
        shapes = np.round(z, 9) + 0.0
        keep = []
        for row, (i, _v) in enumerate(members):
            shape = (i, shapes[row].tobytes())
            if shape not in seen:
                seen.add(shape)
                keep.append(row)
        if len(keep) >= 2:
            buckets[bucket] = (np.array([members[row][0] for row in keep]), z[keep])

    close: dict[tuple[int, int], list[tuple[float, str, int]]] = defaultdict(list)
    for (path, length), (idx, z) in buckets.items():
        sq = np.einsum("ij,ij->i", z, z)
        # the RMS of the centred differences is at most the half-range: a safe first cut
        ss = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
        ii, jj = np.nonzero(np.triu(ss <= threshold * threshold * length * (1 + 1e-9) + 1e-12, 1))
        if ii.size == 0:
            continue
        r = z[ii] - z[jj]
        half = (r.max(axis=1) - r.min(axis=1)) / 2
        for a, b, h in zip(idx[ii].tolist(), idx[jj].tolist(), half.tolist(), strict=True):
            if h <= threshold:
                close[(a, b)].append((h, path, length))

    found: list[NearCopy] = []
    for (i, j), vectors in sorted(close.items()):
        if sum(length - 1 for _h, _p, length in vectors) < MIN_DOF:
            continue
        a, b = keys[i], keys[j]
        worst = max(h for h, _p, _n in vectors)
        found.append(
            NearCopy(a, b, "samples", round(1.0 - worst, 4), _sample_evidence(samples, a, b, vectors))
        )
    return sorted(found, key=lambda c: (-c.score, c.a, c.b))


def _sample_evidence(
    samples: dict[str, dict[str, list[float]]], a: str, b: str, vectors: list[tuple[float, str, int]]
) -> str:
    """e.g. "2 of 3 shared vectors within 0.9 % after sorting and one scale: true (n=20) +-0.6 %
    x1.070; python (n=20) +-0.9 % x1.069 (38 degrees of freedom)"."""
    va, vb = samples[a], samples[b]
    shared = sum(1 for p in va if p in vb and len(va[p]) == len(vb[p]))
    rows = []
    for _h, path, n in sorted(vectors, key=lambda v: (-v[2], v[1])):
        d, s = vector_distance(va[path], vb[path])
        rows.append(f"{path} (n={n}) +-{d:.1%} x{s:.3f}")
    worst = max(h for h, _p, _n in vectors)
    dof = sum(n - 1 for _h, _p, n in vectors)
    shown = "; ".join(rows[:3]) + (f"; {len(rows) - 3} more" if len(rows) > 3 else "")
    return (
        f"{len(vectors)} of {shared} shared sample vectors within {worst:.1%} after sorting and one "
        f"scale: {shown} ({dof} degrees of freedom)"
    )
