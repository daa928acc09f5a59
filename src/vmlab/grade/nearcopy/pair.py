"""One finding: two hand-ins too close to be independent work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class NearCopy:
    """Two hand-ins (a < b) whose code or raw samples are too close to be independent work."""

    a: str
    b: str
    kind: Literal["code", "samples"]
    score: float  # similarity in [0, 1]; for samples 1 - distance (see sample_near_copies)
    evidence: str  # one line for the tutor: which file and lines, or which vectors and how close
    overlap: int = 0  # code: characters of normalised code the match covers
