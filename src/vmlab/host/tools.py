"""A lab's tools as data: what a lab declares in its lab.toml `[tools.NAME]` tables, read here by the
doctor (one row per tool), a step's `requires` (the fix names the Debian package) and the report's
provenance (the version, read the way the lab says).

This module knows no lab: vmlab.labs.tools turns a loaded lab.toml into these specs, and a lab's own
code asks it for the package of a program it is about to run.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

NUMBER = r"(\d+\.\d+(?:\.\d+)?)"  # the first version-looking string a tool prints


@dataclass(frozen=True)
class ToolSpec:
    """One tool a lab uses. `version` is the argv that prints its version (empty: only its presence is
    recorded, as "present"), `pattern` the regex whose first group is the version, `note` an optional
    "module:function" taking the version and returning one line when the release is outside what the
    lab's parsers know (None otherwise)."""

    name: str
    program: str
    package: str
    version: tuple[str, ...] = ()
    pattern: str = NUMBER
    note: str | None = None

    def install_hint(self) -> str:
        return f"apt-get install {self.package} (or make setup)"

    def path(self) -> str | None:
        """Where the program is (PATH, then the system directories Debian keeps off a user's PATH)."""
        from vmlab.paths import system_tool

        return system_tool(self.program)

    def version_note(self, version: str) -> str | None:
        """The lab's one line about a release its parsers do not know; a note that cannot be imported
        says so rather than failing the doctor."""
        if self.note is None:
            return None
        module, _, func = self.note.partition(":")
        try:
            fn = getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError) as e:
            return f"its version note {self.note} is unavailable: {e}"
        note = fn(version)
        return str(note) if note else None
