"""What the HLL-VM lab knows about each OpenJDK feature release, from captured output of each.

Debian 12 ships OpenJDK 17, Debian 13 OpenJDK 21 and 25 (set-up installs the newest headless JDK the
release offers: scripts/setup-host.sh). The parsers in parse.py read all three (tests/unit/hllvm/data/
*-jdk17/21/25.txt); a release outside these is still run, parsed as the nearest known one, and every
experiment says so in one line rather than a check failing without a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class JdkFacts:
    feature: int
    inlining_format: str  # "jdk17": one decision a line; "jdk25": "failed to inline:", "callee changed to"
    # Defaults of the compile thresholds the lab's flags step shows (-XX:+PrintFlagsFinal, x86-64).
    tier3_invocation: int = 200
    tier4_invocation: int = 5000
    compile_threshold: int = 10000


KNOWN: dict[int, JdkFacts] = {
    17: JdkFacts(17, "jdk17"),
    21: JdkFacts(21, "jdk17"),
    25: JdkFacts(25, "jdk25"),
}


def feature(version: str) -> int | None:
    """The feature release of a `java -version` string: "17.0.15" -> 17, "1.8.0_402" -> 8."""
    m = re.match(r"(\d+)(?:\.(\d+))?", version)
    if not m:
        return None
    major = int(m.group(1))
    if major == 1 and m.group(2):
        return int(m.group(2))
    return major


def facts_for(version: str) -> JdkFacts:
    """The facts of this release, or of the nearest known one (the note says which)."""
    f = feature(version)
    if f in KNOWN:
        return KNOWN[f]
    if f is None:
        return KNOWN[max(KNOWN)]
    return KNOWN[min(KNOWN, key=lambda k: (abs(k - f), -k))]


def version_note(version: str) -> str | None:
    """One line when the JDK is outside what the lab knows; None when it is known."""
    f = feature(version)
    if f in KNOWN:
        return None
    known = ", ".join(str(k) for k in sorted(KNOWN))
    near = facts_for(version).feature
    return (
        f"OpenJDK {version} is outside the releases this lab knows ({known}): its output is read as "
        f"OpenJDK {near}'s; a figure that looks wrong may be a format change (install one of {known})"
    )
