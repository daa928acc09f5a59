"""Near-copies of raw samples: sorted, rescaled, compared on a log scale."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any, NamedTuple

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
# How unlikely so close a vector is for honest runs: two independent draws of n samples from one
# noise, their distance d and the smaller robust spread s of the two (`robust_spread`), are as close
# as d / s = r with probability about (c_n r)^(n - 1) for small r (every one of the n - 1 free order
# statistics has to fall within r of its partner). c_n = 1.1 sqrt(n - 1) bounds that chance from
# above for every n from 3 to 50 in 400,000 simulated pairs each of normal noise, heavy-tailed (t3)
# noise and noise with one warm-up outlier (docs/grading.md): the estimate errs towards "honest".
# A distance is the forger's jitter, not the noise: a vector that varies by 1 % (a JIT timing) lies
# as close to an honest re-run as to a copy nudged by 1 %, and tells nothing (r about 1); one that
# varies by 10 % (a guest's exit timings) tells a copy nudged by 1 % at r = 0.1.
MIN_SAMPLES = 3  # a 2-sample vector has one degree of freedom, its spread none to judge it by
RESOLUTION = 0.02  # r is taken as at least this: timers and rounding make nothing closer evidence
VECTOR_EVIDENCE = 1.0  # a vector counts when honest runs come that close at most 1 time in 10
# A pair is flagged when its counted vectors together are something honest runs do at most 1 time in
# 10^8, after paying for choosing k counted of the m shared vectors (log10 C(m, k)): in a class of 500
# (124,750 pairs) a false flag is then expected about once in 800 classes, by the conservative
# estimate above. Measured on one host: honest hll-vm runs (14 runs, 91 pairs) reached at most 0.6,
# warmup runs (6) 0.7, whole kvm-api runs (30, 435 pairs) 2.0. A copy of a whole kvm-api run with
# every sample moved by 0.7-0.8 % reached 1.2 to 33.8 (median 5): most of its timings vary by under
# 1 %, as little as the forger's nudge, so samples alone cannot tell it (its spacing does, flags.py).
PAIR_EVIDENCE = 8.0


def honest_log10_chance(n: int, distance: float, spread: float) -> float:
    """log10 of the chance that two honest runs of an n-sample measurement come this close (<= 0)."""
    if spread <= 0 or n < MIN_SAMPLES:
        return 0.0
    r = max(distance, RESOLUTION * spread) / spread
    return (n - 1) * min(0.0, math.log10(1.1 * math.sqrt(n - 1) * r))


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


class _Close(NamedTuple):
    """One shared vector that counts as evidence against a pair."""

    distance: float
    path: str
    n: int
    spread: float  # the smaller robust spread of the two
    chance: float  # honest_log10_chance


def robust_spread(x: list[float]) -> float:
    """The spread of a positive vector on a log scale: 1.4826 x the median absolute deviation of its
    logs (the standard deviation for normal noise; one warm-up outlier barely moves it). Tied
    values (a quantised count) give 0: such a vector is no evidence (`honest_log10_chance`)."""
    import numpy as np

    return float(_log_spread(np.log(np.asarray(x, dtype=np.float64))))


def _log_spread(logs: Any) -> Any:
    """`robust_spread` of each row of an array of logs (the MAD does not see a shift of a row)."""
    import numpy as np

    return 1.4826 * np.median(np.abs(logs - np.median(logs, axis=-1, keepdims=True)), axis=-1)


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
    vectors they share (same path, same length, at least MIN_SAMPLES). A vector counts when its
    `vector_distance` is at most `threshold` and honest runs come that close at most 1 time in
    10^VECTOR_EVIDENCE (`honest_log10_chance`); a pair is flagged when its counted vectors together
    reach PAIR_EVIDENCE. score = 1 - the largest distance among them (0.99: every sample agrees to
    about 1 %).

    A vector that is another of the same report rescaled (a stage derived as samples / exits) is no
    new evidence and counts once. Fast for a class: per (path, length) one matrix product gives every
    pair's RMS difference, a lower bound of the distance, and only pairs under the limit are looked at
    element by element."""
    import numpy as np

    keys = sorted(samples)
    raw: dict[tuple[str, int], list[tuple[int, list[float]]]] = defaultdict(list)
    for i, key in enumerate(keys):
        for path, vec in samples[key].items():
            usable = min(vec) > 0 and max(vec) > min(vec) and all(map(math.isfinite, vec))
            if len(vec) >= MIN_SAMPLES and usable:
                raw[(path, len(vec))].append((i, vec))
    buckets: dict[tuple[str, int], tuple[Any, Any, Any]] = {}
    held: dict[int, set[tuple[str, int]]] = defaultdict(set)  # hand-in -> the vectors it is judged on
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
                held[i].add(bucket)
        if len(keep) >= 2:
            zk = z[keep]
            buckets[bucket] = (np.array([members[row][0] for row in keep]), zk, _log_spread(zk))

    close: dict[tuple[int, int], list[_Close]] = defaultdict(list)
    for (path, length), (idx, z, spread) in buckets.items():
        sq = np.einsum("ij,ij->i", z, z)
        # the RMS of the centred differences is at most the half-range: a safe first cut
        ss = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
        # the largest d / s that counts: (c_n r)^(n - 1) <= 10^-VECTOR_EVIDENCE
        r_max = 10 ** (-VECTOR_EVIDENCE / (length - 1)) / (1.1 * math.sqrt(length - 1))
        pair_spread = np.minimum(spread[:, None], spread[None, :])
        limit = np.minimum(threshold, r_max * pair_spread)
        ii, jj = np.nonzero(np.triu(ss <= limit * limit * length * (1 + 1e-9) + 1e-12, 1))
        if ii.size == 0:
            continue
        r = z[ii] - z[jj]
        half = (r.max(axis=1) - r.min(axis=1)) / 2
        for a, b, h, sp in zip(
            idx[ii].tolist(), idx[jj].tolist(), half.tolist(), pair_spread[ii, jj].tolist(), strict=True
        ):
            chance = honest_log10_chance(length, h, sp)
            if h <= threshold and chance <= -VECTOR_EVIDENCE:
                close[(a, b)].append(_Close(h, path, length, sp, chance))

    found: list[NearCopy] = []
    for (i, j), vectors in sorted(close.items()):
        shared = len(held[i] & held[j])
        evidence = -sum(v.chance for v in vectors) - math.log10(math.comb(shared, len(vectors)))
        if evidence < PAIR_EVIDENCE:
            continue
        a, b = keys[i], keys[j]
        worst = max(v.distance for v in vectors)
        why = _sample_evidence(samples, a, b, vectors, shared, evidence)
        found.append(NearCopy(a, b, "samples", round(1.0 - worst, 4), why))
    return sorted(found, key=lambda c: (-c.score, c.a, c.b))


def _sample_evidence(
    samples: dict[str, dict[str, list[float]]],
    a: str,
    b: str,
    vectors: list[_Close],
    shared: int,
    evidence: float,
) -> str:
    """e.g. "2 of 3 shared vectors within 0.9 % after sorting and one scale: python (n=20) +-0.9 %
    x1.069 of spread 12.5 %; true (n=20) +-0.6 % x1.070 of spread 7.6 % (honest runs: 1 in 10^11.4)"."""
    va, vb = samples[a], samples[b]
    rows = []
    for v in sorted(vectors, key=lambda v: (v.chance, v.path)):
        _d, s = vector_distance(va[v.path], vb[v.path])
        rows.append(f"{v.path} (n={v.n}) +-{v.distance:.1%} x{s:.3f} of spread {v.spread:.1%}")
    worst = max(v.distance for v in vectors)
    shown = "; ".join(rows[:3]) + (f"; {len(rows) - 3} more" if len(rows) > 3 else "")
    return (
        f"{len(vectors)} of {shared} shared sample vectors within {worst:.1%} after sorting and one "
        f"scale: {shown} (honest runs this close: 1 in 10^{evidence:.1f})"
    )
