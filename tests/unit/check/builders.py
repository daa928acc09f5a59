"""A small lab for grader tests (tasks t1: steps a, b; t2: step c), optionally with `[[derived]]`."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from vmlab.spec.checks import Derivation
from vmlab.spec.lab import Lab


class LabWithDerived(Lab):
    """Lab as it will be once lab.toml may declare `[[derived]]` (the integrity check reads it)."""

    derived: list[Derivation] = Field(default_factory=list)


def make_lab(checks: list[dict[str, Any]], *, derived: list[dict[str, Any]] | None = None) -> Lab:
    data: dict[str, Any] = {
        "lab": {"name": "t", "title": "t"},
        "tasks": [
            {"id": "t1", "title": "first", "experiments": ["a", "b"]},
            {"id": "t2", "title": "second", "experiments": ["c"]},
        ],
        "experiments": {s: {"runner": "m:f"} for s in ("a", "b", "c")},
        "checks": checks,
    }
    if derived is not None:
        return LabWithDerived.model_validate({**data, "derived": derived})
    return Lab.model_validate(data)
