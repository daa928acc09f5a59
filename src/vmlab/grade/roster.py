"""The class roster (`vmlab grade --roster roster.csv`): who the hand-ins belong to.

An LMS export names a hand-in by a folder, a login or an e-mail address; the tutor's gradebook keys by a
student id. The roster is a CSV with a header: the id column is the first of `student_id`, `student`,
`id`, `sid`; every other column among `folder`, `email`, `login`, `username`, `github`, `name` holds a
name a hand-in may carry (matched without regard to case). A hand-in whose name is in no row is graded
under that name and flagged `not-in-roster`; roster students without a hand-in are listed as missing.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from vmlab.errors import UsageError

ID_COLUMNS = ("student_id", "student", "id", "sid")
NAME_COLUMNS = ("folder", "email", "login", "username", "github", "name")


@dataclass
class Roster:
    ids: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # lower-cased hand-in name -> student id

    def id_of(self, name: str) -> str | None:
        return self.names.get(name.lower())

    def aliases(self, student: str) -> set[str]:
        """Every name the roster knows for `student`, the id itself included (lower-cased)."""
        return {n for n, s in self.names.items() if s == student} | {student.lower()}


def read_roster(path: Path) -> Roster:
    """Parse the CSV; a roster that cannot say who is who is one clear error, never a guess."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets write a BOM
    except OSError as e:
        raise UsageError(f"cannot read roster {path}: {e.strerror}") from None
    rows = list(csv.DictReader(text.splitlines()))
    header = [h.strip().lower() for h in (rows[0].keys() if rows else [])]
    id_col = next((c for c in ID_COLUMNS if c in header), None)
    name_cols = [c for c in NAME_COLUMNS if c in header and c != id_col]
    if id_col is None:
        raise UsageError(
            f"roster {path} has no student id column",
            hint=f"name one column {' or '.join(ID_COLUMNS)}; hand-in names go in {', '.join(NAME_COLUMNS)}",
        )
    roster = Roster()
    for line, row in enumerate(rows, 2):
        cells = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        student = cells.get(id_col, "")
        if not student:
            raise UsageError(f"roster {path} line {line}: the {id_col} column is empty")
        if student in roster.ids:
            raise UsageError(f"roster {path} line {line}: student {student!r} appears twice")
        roster.ids.append(student)
        for name in [student, *(cells.get(c, "") for c in name_cols)]:
            if not name:
                continue
            other = roster.names.setdefault(name.lower(), student)
            if other != student:
                raise UsageError(
                    f"roster {path} line {line}: {name!r} names both {other!r} and {student!r}",
                    hint="every folder, login and e-mail must belong to one student",
                )
    return roster
