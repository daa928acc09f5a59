"""A requirement a step names that this host does not meet: what the step's `skipped` message says."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Unmet:
    requirement: str
    reason: str
    fix: str

    def one_line(self) -> str:
        return f"{self.requirement}: {self.reason}" + (f" (fix: {self.fix})" if self.fix else "")
