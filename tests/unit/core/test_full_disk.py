"""A full disk and a read-only folder, for real: a 64 KiB tmpfs, filled, or remounted read-only.

Each writer of vmlab's outputs (the report, `check --junit`, `grade -o`, the site) and VMLAB_HOME say so
in one line naming the path and the fix, exit 2; the previous file is byte for byte what it was and no
temp file is left. Mounting needs root; as another user these tests skip with that reason.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vmlab.cli.main import app

runner = CliRunner()
PAGE = 4096
FILLER = "filler"


def the_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs of our own, unmounted afterwards whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    p = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(mnt: Path, leave_pages: int = 0) -> None:
    """Fill the tmpfs page by page until it refuses, then free `leave_pages` pages."""
    (mnt / FILLER).mkdir()
    n = 0
    while True:
        page = mnt / FILLER / str(n)
        try:
            with page.open("wb") as f:
                f.write(b"x" * PAGE)
        except OSError as e:
            assert e.errno == errno.ENOSPC
            page.unlink()
            break
        n += 1
    for i in range(leave_pages):
        (mnt / FILLER / str(i)).unlink()


def remount_ro(mnt: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True, capture_output=True)


def listing(folder: Path) -> dict[str, bytes | None]:
    """Every file under `folder` (the filler left out) with its bytes: what a fault must not change."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
        if FILLER not in p.relative_to(folder).parts
    }


@pytest.fixture
def old_run(tmp_path: Path, vmlab_home: Path) -> Path:
    """A real warm-up run: report.json with its artifacts/."""
    path = tmp_path / "old" / "report.json"
    args = ["lab", "run", "warmup", "-o", str(path), "--set", "true.runs=3", "--set", "python.runs=3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return path


def test_lab_run_onto_a_full_disk_keeps_the_old_report(tmpfs: Path, old_run: Path, vmlab_home: Path) -> None:
    shutil.copy(old_run, tmpfs / "r.json")
    shutil.copytree(old_run.parent / "artifacts", tmpfs / "artifacts")
    fill(tmpfs)
    before = listing(tmpfs)
    runs_before = sorted(os.listdir(vmlab_home / "runs"))
    result = runner.invoke(app, ["lab", "run", "warmup", "-o", str(tmpfs / "r.json")])
    assert result.exit_code == 2
    line = the_error_line(result.stderr)
    assert f"cannot write {tmpfs / 'r.json'}: the disk holding {tmpfs} is full" in line
    assert "(fix: free space or write the report elsewhere with -o" in line
    assert listing(tmpfs) == before  # old report and its artifacts as they were, no temp file
    assert sorted(os.listdir(vmlab_home / "runs")) == runs_before  # no run folder left behind


def test_the_disk_filling_while_the_report_is_written(tmpfs: Path, vmlab_home: Path) -> None:
    # one page free: the run's folder is shown writable and artifacts/ takes that page, then the
    # report itself finds the disk full
    fill(tmpfs, leave_pages=1)
    result = runner.invoke(app, ["lab", "run", "warmup", "-o", str(tmpfs / "r.json")])
    assert result.exit_code == 2
    line = the_error_line(result.stderr)
    assert f"cannot write {tmpfs / 'r.json'}: the disk holding {tmpfs} is full (" in line
    assert re.search(r"is full \([\d,]+ bytes needed, 0 free\) \(fix: ", line)  # artifacts/ took the page
    assert listing(tmpfs) == {}  # no report, no half-made artifacts/, no temp file
    assert os.listdir(vmlab_home / "runs") == []


FILL_STEPS = """
from vmlab.labs.step import NoParams, StepContext
from vmlab.report.model import Experiment


def fill(params: NoParams, ctx: StepContext) -> dict:
    pages = 0
    with open(ctx.report_dir / "ballast", "wb") as f:  # a step whose output fills the disk
        try:
            while True:
                f.write(b"x" * 4096)
                f.flush()
                pages += 1
        except OSError:
            pass
    return {"fill": Experiment(unit="pages", counts={"pages": pages})}
"""

FILL_LAB = """
[lab]
name = "filler"
title = "A step that fills the disk"

[[tasks]]
id = "t1"
title = "fill"
experiments = ["fill"]

[experiments.fill]
runner = "fill_steps:fill"
"""


def test_the_disk_filling_during_a_run_keeps_the_last_report(
    tmpfs: Path, tmp_path: Path, vmlab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vmlab.report.io import load_report

    (tmp_path / "labs" / "filler").mkdir(parents=True)
    (tmp_path / "labs" / "filler" / "lab.toml").write_text(FILL_LAB)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "fill_steps.py").write_text(FILL_STEPS)
    monkeypatch.setenv("VMLAB_LABS", str(tmp_path / "labs"))
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    report = tmpfs / "r.json"
    result = runner.invoke(app, ["lab", "run", "filler", "-o", str(report)])
    assert result.exit_code == 2
    line = the_error_line(result.stderr)
    assert f"cannot write {report}: the disk holding {tmpfs} is full" in line
    space = re.search(r"is full \(([\d,]+) bytes needed, ([\d,]+) free\) \(fix: ", line)
    assert space, line
    needed, free = (int(g.replace(",", "")) for g in space.groups())
    st = os.statvfs(tmpfs)
    assert free == st.f_bavail * st.f_frsize  # the file system's own count (the temp file gone)
    assert needed > free and needed > (tmpfs / "r.json").stat().st_size  # the report grew by a step
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines[lines.index(line) + 1] == f"partial report: {report}"  # on a line of its own
    kept = load_report(report)  # the report written before the step: whole, not half
    assert kept.run.status == "partial" and "fill" not in kept.experiments
    assert sorted(listing(tmpfs)) == ["artifacts", "artifacts/.vmlab-artifacts", "ballast", "r.json"]


def test_save_report_on_a_full_disk_keeps_the_previous_file(tmpfs: Path, old_run: Path) -> None:
    from vmlab.errors import OutputError
    from vmlab.report.io import load_report, save_report

    target = tmpfs / "report.json"
    shutil.copy(old_run, target)
    fill(tmpfs, leave_pages=2)  # some room, less than the report takes
    before = listing(tmpfs)
    report = load_report(old_run)
    bigger = report.model_copy(update={"run_id": "x" * (4 * PAGE)})
    needed = len((bigger.model_dump_json(indent=2) + "\n").encode())  # the bytes save_report writes
    st = os.statvfs(tmpfs)
    free = st.f_bavail * st.f_frsize  # the file system's own count, before and after the failed write
    assert free < needed
    with pytest.raises(OutputError) as raised:
        save_report(bigger, target)
    assert raised.value.exit_code == 2
    assert raised.value.one_line() == (
        f"cannot write {target}: the disk holding {tmpfs} is full ({needed:,} bytes needed, {free:,} free)"
        " (fix: free space or write elsewhere with -o)"
    )
    assert listing(tmpfs) == before


def test_check_junit_onto_a_full_disk(tmpfs: Path, old_run: Path) -> None:
    junit = tmpfs / "junit.xml"
    junit.write_text("<testsuites/>\n")  # an earlier CI run's file
    fill(tmpfs)
    before = listing(tmpfs)
    result = runner.invoke(app, ["check", str(old_run), "--junit", str(junit)])
    assert result.exit_code == 2
    line = the_error_line(result.stderr)
    assert f"cannot write {junit}: the disk holding {tmpfs} is full" in line and "--junit" in line
    assert listing(tmpfs) == before


def test_grade_onto_a_full_disk_keeps_the_earlier_outputs(tmpfs: Path, old_run: Path) -> None:
    out = tmpfs / "out"
    first = runner.invoke(app, ["grade", str(old_run.parent), "-o", str(out)])
    assert first.exit_code == 0, first.output
    fill(tmpfs)
    before = listing(tmpfs)
    result = runner.invoke(app, ["grade", str(old_run.parent), "-o", str(out)])
    assert result.exit_code == 2
    line = the_error_line(result.stderr)
    assert f"cannot write {out / 'class.json'}: the disk holding {out} is full" in line
    assert "-o OUT/" in line
    assert listing(tmpfs) == before


def test_the_site_onto_a_full_disk(tmpfs: Path, old_run: Path) -> None:
    fill(tmpfs)
    result = runner.invoke(app, ["report", "html", str(old_run), "-o", str(tmpfs / "site")])
    assert result.exit_code == 2
    line = the_error_line(result.stderr)
    assert f"cannot write {tmpfs / 'site'}: the disk holding {tmpfs} is full" in line
    assert listing(tmpfs) == {}  # no page, no temp folder


def test_a_read_only_vmlab_home_stops_before_any_step(tmpfs: Path, tmp_path: Path) -> None:
    remount_ro(tmpfs)
    home = tmpfs / "home"
    env = {"VMLAB_HOME": str(home)}
    for args in (
        ["lab", "run", "warmup", "-o", str(tmp_path / "r.json")],
        ["compare", "-n", "1", "--only", "startup", "-o", str(tmp_path / "r.json")],
    ):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 2, result.output
        line = the_error_line(result.stderr)
        assert f"VMLAB_HOME {home} cannot be used: it is on a read-only file system" in line
        assert "(fix: set VMLAB_HOME to a writable folder" in line
        assert [ln for ln in result.stderr.splitlines() if ln.strip()] == [line]  # no step ran
    assert not (tmp_path / "r.json").exists()


def test_a_vmlab_home_that_is_a_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("not a folder\n")
    result = runner.invoke(app, ["lab", "run", "warmup"], env={"VMLAB_HOME": str(home)})
    assert result.exit_code == 2
    assert f"VMLAB_HOME {home} cannot be used: a file stands where a folder is needed" in the_error_line(
        result.stderr
    )


def test_output_into_a_read_only_folder(tmpfs: Path, old_run: Path, vmlab_home: Path) -> None:
    shutil.copy(old_run, tmpfs / "r.json")
    remount_ro(tmpfs)
    before = listing(tmpfs)
    result = runner.invoke(app, ["lab", "run", "warmup", "-o", str(tmpfs / "r.json")])
    assert result.exit_code == 2
    line = the_error_line(result.stderr)
    assert f"cannot write {tmpfs / 'r.json'}: {tmpfs} is on a read-only file system" in line
    result = runner.invoke(app, ["grade", str(old_run.parent), "-o", str(tmpfs / "out")])
    assert result.exit_code == 2
    assert f"cannot write {tmpfs / 'out'}: {tmpfs} is on a read-only file system" in the_error_line(
        result.stderr
    )
    assert listing(tmpfs) == before


INPUT_LAB = (
    FILL_LAB.replace('title = "A step that fills the disk"', 'title = "A lab with an input"')
    + """
[inputs.notes]
kind = "file"
description = "a file the run copies under VMLAB_HOME before any step"
"""
)


def test_a_full_vmlab_home_while_an_input_is_staged(
    tmpfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's scratch (under VMLAB_HOME) takes the input first: a home with room for its probe
    but not for the input is named, with the space left; no run folder and no report are left."""
    (tmp_path / "labs" / "staging").mkdir(parents=True)
    (tmp_path / "labs" / "staging" / "lab.toml").write_text(INPUT_LAB.replace('"filler"', '"staging"'))
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "fill_steps.py").write_text(FILL_STEPS)
    monkeypatch.setenv("VMLAB_LABS", str(tmp_path / "labs"))
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    home = tmpfs / "home"
    (home / "runs").mkdir(parents=True)
    fill(tmpfs, leave_pages=2)
    big = tmp_path / "notes.txt"
    big.write_bytes(b"n" * (16 * PAGE))  # four times what is free
    report = tmp_path / "out" / "r.json"
    args = ["lab", "run", "staging", "--input", f"notes={big}", "-o", str(report)]
    result = runner.invoke(app, args, env={"VMLAB_HOME": str(home)})
    assert result.exit_code == 2, result.output
    line = the_error_line(result.stderr)
    assert f"cannot write {home / 'runs'}" in line and "/inputs/notes" in line
    # what the input needs (its size) and what is free once the half copy is gone: the two pages left
    space = re.search(r"is full \(([\d,]+) bytes needed, ([\d,]+) free\) \(fix: ", line)
    assert space, line
    needed, free = (int(g.replace(",", "")) for g in space.groups())
    st = os.statvfs(tmpfs)
    assert needed == 16 * PAGE and free == st.f_bavail * st.f_frsize
    assert "(fix: free space or set VMLAB_HOME to a writable folder" in line
    assert os.listdir(home / "runs") == [] and not report.exists()


def test_a_full_vmlab_home_stops_before_any_step(tmpfs: Path, tmp_path: Path) -> None:
    home = tmpfs / "home"
    fill(tmpfs)
    st = os.statvfs(tmpfs)
    result = runner.invoke(
        app, ["lab", "run", "warmup", "-o", str(tmp_path / "r.json")], env={"VMLAB_HOME": str(home)}
    )
    assert result.exit_code == 2, result.output
    line = the_error_line(result.stderr)
    free = st.f_bavail * st.f_frsize  # the file system's count; the failed probe took nothing
    assert f"VMLAB_HOME {home} cannot be used: its disk is full ({free:,} bytes free)" in line
    assert "(fix: set VMLAB_HOME to a writable folder" in line
    assert not (tmp_path / "r.json").exists()
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())  # no run folder
