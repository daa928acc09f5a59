"""Near-copies across a class: code that differs only in comments, names and layout, and raw samples
that differ only by a little jitter, an order and a scale. `flags.cross_flags` catches exact copies
(file hashes, sample hashes); a student who edits one comment and moves every sample by 1 % gets past
those, and not past these.

Code: every file is tokenised per language with Pygments and winnowed with copydetect (the MOSS method:
k-gram hashes of the normalised token text). Comments and whitespace are dropped and names become
placeholders, so renaming does not help. The lab's skeleton is every student's starting point: its
k-grams are subtracted first, so two students handing in the skeleton unchanged share nothing.

Samples: each vector is sorted (so reordering does not help) and compared on a log scale after the
best common factor is divided out (so scaling does not help); what remains is the jitter. Honest
re-runs on one machine leave several percent of it; a forger who moves each sample by under 1 % leaves
under 1 % (see `jitter_bound`). Only enough shared samples count as evidence: a few short vectors
can be close by chance, and a vector whose own noise is as small as the jitter (a JIT timing that
varies by 1 %) cannot tell a copy from a re-run (`honest_log10_chance`).

Nothing here changes a score; the results explain why a tutor should look at two hand-ins.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vmlab.grade.nearcopy.code import CODE_THRESHOLD, SHORT, code_near_copies, language_of
from vmlab.grade.nearcopy.handin import lab_boilerplate, student_files
from vmlab.grade.nearcopy.pair import NearCopy
from vmlab.grade.nearcopy.samples import (
    PAIR_EVIDENCE,
    SAMPLE_THRESHOLD,
    honest_log10_chance,
    jitter_bound,
    robust_spread,
    sample_near_copies,
    sample_vectors,
    vector_distance,
)

if TYPE_CHECKING:
    from vmlab.report.model import Report
    from vmlab.spec.lab import Lab

__all__ = [
    "CODE_THRESHOLD",
    "PAIR_EVIDENCE",
    "SAMPLE_THRESHOLD",
    "SHORT",
    "NearCopy",
    "class_near_copies",
    "code_near_copies",
    "honest_log10_chance",
    "jitter_bound",
    "lab_boilerplate",
    "language_of",
    "robust_spread",
    "sample_near_copies",
    "sample_vectors",
    "student_files",
    "vector_distance",
]


def class_near_copies(
    hand_ins: Sequence[tuple[str, Report, Path]], lab: Lab, lab_dir: Path, *, code: bool = True
) -> list[NearCopy]:
    """Every near-copy pair of a class worth a tutor's look: (hand-in key, report, folder) in, pairs
    by key out.

    A code match shorter than SHORT characters of normalised code is left out: a solution that small
    (a lab's five-instruction hypercall) is what honest students converge on, and a class of them would
    all be held. Code is compared only when `code` (lexing costs about 2 ms per KB of student code);
    samples always, which is fast."""
    found: list[NearCopy] = []
    if code:
        subs = {key: student_files(report, folder) for key, report, folder in hand_ins}
        if any(subs.values()):
            found += [n for n in code_near_copies(subs, lab_boilerplate(lab, lab_dir)) if n.overlap >= SHORT]
    found += sample_near_copies({key: sample_vectors(report) for key, report, _folder in hand_ins})
    return found
