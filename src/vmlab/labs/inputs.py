"""Stage a run's inputs: the student's files (or the lab's defaults) are copied into a fresh
`artifacts/inputs/` beside the report and described by relative name, size and sha256.

Inputs are staged in the run's scratch before the artifacts folder is emptied: a student may re-run
from a hand-in, giving a file that lies in the very artifacts/ this run replaces. Every write fault is
one OutputError naming the folder (VMLAB_HOME's for staging, the report's for artifacts).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from vmlab.errors import LabError, UsageError
from vmlab.report.model import InputRecord
from vmlab.spec.digest import sha256_file, sha256_tree, tree_files
from vmlab.spec.lab import Lab

ARTIFACTS = "artifacts"
MARKER = ".vmlab-artifacts"  # in an artifacts folder vmlab wrote, and so may replace
ELSEWHERE = "write the report elsewhere with -o DIR/report.json"
HOME_FIX = "set VMLAB_HOME to a writable folder"


def prepare_artifacts(directory: Path) -> None:
    """Start an empty artifacts folder; never wipe one vmlab did not make."""
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).exists():
            raise UsageError(
                f"{directory} exists and was not written by vmlab",
                hint="write the report to another folder (-o DIR/report.json)",
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("written by vmlab; replaced on the next run into this folder\n")


def record_input(name: str, kind: str, src: Path, source: str, artifacts: Path) -> tuple[InputRecord, Path]:
    """Copy an input under artifacts/inputs/<name>/ and describe it by relative name, size and sha256
    (a folder's: spec.digest.sha256_tree, which vmlab grade --rerun checks again)."""
    dest_root = artifacts / "inputs" / name
    dest_root.mkdir(parents=True, exist_ok=True)
    dest = dest_root / src.name
    if kind == "file":
        shutil.copyfile(src, dest)
        files = [dest]
        digest = sha256_file(dest)
    else:
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".git"))
        files = tree_files(dest)
        digest = sha256_tree(dest, files)
    record = InputRecord(
        name=src.name,
        kind="file" if kind == "file" else "dir",
        source=source,  # type: ignore[arg-type]
        size=sum(p.stat().st_size for p in files),
        files=len(files),
        sha256=digest,
        artifact=dest.relative_to(artifacts.parent).as_posix(),
    )
    return record, dest


def stage_inputs(
    lab: Lab, given: Mapping[str, Path], scratch: Path, artifacts: Path, report: Path
) -> tuple[dict[str, InputRecord], dict[str, Path]]:
    """Stage every input of the lab (the one given, else its default) in `scratch`, then fill a fresh
    `artifacts` beside `report`; the records and the paths of the recorded copies, by input name."""
    from vmlab.report.io import writing

    staged: dict[str, tuple[Path, str]] = {}
    for name, decl in lab.inputs.items():
        src = given.get(name)
        source = "student" if src is not None else "default"
        if src is None and decl.default is not None:
            src = lab.folder / decl.default
            if not src.exists():
                raise LabError(f"lab {lab.lab.name!r}: the default of input {name!r}, {src}, is missing")
        if src is None:
            continue
        stage = scratch / "inputs" / name / src.name
        with writing(stage.parent, elsewhere=HOME_FIX, needed=bytes_of(src)):
            stage.parent.mkdir(parents=True, exist_ok=True)
            try:
                if decl.kind == "file":
                    shutil.copyfile(src, stage)
                else:
                    shutil.copytree(src, stage, dirs_exist_ok=True)
            except OSError:  # the half copy goes first, so the error's free space is the disk's own
                shutil.rmtree(stage.parent, ignore_errors=True)
                raise
        staged[name] = (stage, source)
    inputs: dict[str, InputRecord] = {}
    input_paths: dict[str, Path] = {}
    needed = sum(bytes_of(stage) for stage, _ in staged.values())
    with writing(artifacts, elsewhere=ELSEWHERE, needed=needed or None):
        report.parent.mkdir(parents=True, exist_ok=True)
        prepare_artifacts(artifacts)
        for name, (stage, source) in staged.items():
            kind = lab.inputs[name].kind
            inputs[name], input_paths[name] = record_input(name, kind, stage, source, artifacts)
    shutil.rmtree(scratch / "inputs", ignore_errors=True)
    return inputs, input_paths


def bytes_of(path: Path) -> int:
    """A file's size, or a folder's files' sizes added up: what copying it takes on disk (about)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
