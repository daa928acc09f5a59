"""Per-student variants: workload parameters derived from sha256(lab, term, student id).

The idea is the CS:APP bomb lab's, applied to measurements: each student's machine computes its own
parameters (a loop count, a line to print, a number of MiB to touch), the steps run with them, and
exact-count checks compare against them (`variant.NAME` in a check's path). A report copied from a
classmate carries the classmate's parameters, which are not the copier's: `vmlab check` finds the
recorded variant not re-deriving from the report's own student, and `vmlab grade` derives it from the
hand-in's identity (`variant-mismatch`).

No secret is involved, on purpose: a student must be able to compute their own variant offline. It is
no proof against a student who re-runs the lab under their own id (that is an honest run); it makes a
copy visible. The term (lab.toml `[variants] term`, or VMLAB_TERM, which wins) keeps one class's
variants from the next one's.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmlab.spec.lab import Lab, VariantParam

TERM_ENV = "VMLAB_TERM"
Value = int | float | str


def term_of(lab: Lab, term: str | None = None) -> str:
    """The term variants are drawn for: the one given, else VMLAB_TERM, else the lab's own."""
    if term is not None:
        return term
    env = os.environ.get(TERM_ENV)
    if env:
        return env
    return lab.variants.term if lab.variants is not None else ""


def draw(lab_name: str, term: str, student: str, name: str, spec: VariantParam) -> Value:
    """One parameter's value: the first 8 bytes of sha256 over the four strings pick it (uniform up to
    2^-40 for the small ranges labs use)."""
    msg = "\0".join(("vmlab variant", lab_name, term, student.strip(), name)).encode()
    k = int.from_bytes(hashlib.sha256(msg).digest()[:8], "big")
    value: Value
    if spec.choices is not None:
        value = spec.choices[k % len(spec.choices)]
    else:
        assert spec.range is not None  # the model demands one of the two
        lo, hi = spec.range
        count = (hi - lo) // spec.step + 1
        value = lo + (k % count) * spec.step
    return spec.format.format(value=value) if spec.format is not None else value


def derive(lab: Lab, student: str | None, term: str | None = None) -> dict[str, Value]:
    """Every variant parameter of the lab for this student (no student: the anonymous variant, "")."""
    if lab.variants is None:
        return {}
    t = term_of(lab, term)
    return {
        name: draw(lab.lab.name, t, student or "", name, spec) for name, spec in lab.variants.params.items()
    }


def step_settings(lab: Lab, values: dict[str, Value]) -> dict[str, dict[str, Any]]:
    """STEP -> KEY -> value: what the variant sets in the steps' parameters."""
    out: dict[str, dict[str, Any]] = {}
    if lab.variants is None:
        return out
    for name, spec in lab.variants.params.items():
        for target in spec.set:
            step, _, key = target.partition(".")
            out.setdefault(step, {})[key] = values[name]
    return out


def differences(lab: Lab, recorded: dict[str, Any], expected: dict[str, Value]) -> list[str]:
    """What differs between a recorded variant and the expected one, one phrase each."""
    out: list[str] = []
    for name in lab.variants.params if lab.variants is not None else {}:
        if name not in recorded:
            out.append(f"{name} is not recorded (expected {expected[name]!r})")
        elif recorded[name] != expected[name]:
            out.append(f"{name} is {recorded[name]!r}, expected {expected[name]!r}")
    out += [f"{name} is no variant parameter of the lab" for name in recorded if name not in expected]
    return out
