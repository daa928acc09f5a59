"""What a hand-in and a lab hold for the comparison: the student's own files, the skeleton."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vmlab.report.model import Report
    from vmlab.spec.lab import Lab


def _inside(path: Path, root: Path) -> bool:
    """The real path lies under root (no symlink or ".." leads out of the hand-in)."""
    try:
        path.resolve().relative_to(root.resolve())
    except (OSError, ValueError):
        return False
    return True


def _files_of(root: Path, base: Path, name: str) -> dict[str, Path]:
    """The regular files of a dir input, keyed "name/relpath", none of them outside base."""
    out: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink() or not p.is_file() or not _inside(p, base):
            continue
        out[f"{name}/{p.relative_to(root).as_posix()}"] = p
    return out


def student_files(report: Report, report_dir: Path) -> dict[str, Path]:
    """The student's own input files kept under the hand-in's artifacts (source "student").

    A file input by its name, a dir input as every file in it keyed "name/relpath". Anything that
    would leave report_dir (an absolute artifact path, "..", a symlink) is skipped: a hand-in is
    untrusted and must not make the grader read the tutor's files."""
    out: dict[str, Path] = {}
    base = report_dir
    for name, rec in sorted(report.inputs.items()):
        if rec.source != "student" or not rec.artifact:
            continue
        rel = Path(rec.artifact)
        if rel.is_absolute() or ".." in rel.parts:
            continue
        path = base / rel
        if path.is_symlink() or not _inside(path, base):
            continue
        if rec.kind == "file" and path.is_file():
            out[name] = path
        elif rec.kind == "dir" and path.is_dir():
            out.update(_files_of(path, base, name))
    return out


def lab_boilerplate(lab: Lab, lab_dir: Path) -> dict[str, list[Path]]:
    """Each input's skeleton: its `default` (the file, or every file of the folder).

    An input without a default whose description names a `skeleton/...` file of the lab counts that
    file: a lab may hand out skeleton/t1_interpret.py ... but declare no default, as a reference
    engine, not the skeleton, stands in when a student passes no file."""
    out: dict[str, list[Path]] = {}
    for name, spec in sorted(lab.inputs.items()):
        rels = (
            [spec.default]
            if spec.default is not None
            else re.findall(r"skeleton/[\w./-]*\w", spec.description)
        )
        files: list[Path] = []
        for rel in rels:
            path = lab_dir / rel
            if not _inside(path, lab_dir):
                continue
            if path.is_file():
                files.append(path)
            elif path.is_dir():
                files += [p for p in sorted(path.rglob("*")) if p.is_file() and _inside(p, lab_dir)]
        if files:
            out[name] = files
    return out
