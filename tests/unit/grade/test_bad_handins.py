"""Hand-ins that are not what they seem: symlinks out of the folder, a folder or FIFO as report.json,
thousands of files. Each is one line (a hand-in graded `unreadable`, or one error), never followed, never
read, never a traceback; the rest of the class is graded.

Runs are real runs of the toy lab (tests/unit/grade/conftest.py); expected lines name the paths the test
built.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import pytest
from tests.unit.grade.conftest import Toy
from typer.testing import CliRunner

from vmlab.cli.main import app
from vmlab.grade import handins
from vmlab.grade.handins import discover, load

runner = CliRunner()


def grade_class(toy: Toy) -> dict[str, dict[str, Any]]:
    """`vmlab grade class/ -o out/ --lab toy`: exit 0 (the class was graded); class.json's rows by hand-in."""
    out = toy.root / "out"
    result = runner.invoke(app, ["grade", str(toy.root / "class"), "-o", str(out), "--lab", "toy"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return {s["handin"]: s for s in json.loads((out / "class.json").read_text())["students"]}


def unreadable(row: dict[str, Any]) -> str:
    assert row["status"] == "invalid" and [f["code"] for f in row["flags"]] == ["unreadable"], row
    message: str = row["flags"][0]["message"]
    assert "\n" not in message
    return message


def test_a_report_symlinked_out_of_its_hand_in_is_never_read(toy: Toy) -> None:
    toy.hand_in(toy.run("alice"), "alice")
    elsewhere = toy.run("bob")  # a real report outside the class folder
    (toy.root / "class" / "mallory").mkdir()
    link = toy.root / "class" / "mallory" / "report.json"
    link.symlink_to(elsewhere)
    found = {h.key: load(h) for h in discover([toy.root / "class"])}
    mallory = found["mallory"]
    assert mallory.raw is None and mallory.sha256 is None  # nothing was read
    assert mallory.problem == (
        f"{link} is a symlink to {elsewhere.resolve()}, outside its hand-in folder {link.parent}: not read"
    )
    rows = grade_class(toy)
    assert rows["alice"]["status"] == "graded"
    assert unreadable(rows["mallory"]) == mallory.problem


def test_an_artifacts_folder_symlinked_out_is_flagged(toy: Toy) -> None:
    report = toy.run("eve")
    folder = toy.root / "class" / "eve"
    folder.mkdir(parents=True)
    shutil.copy(report, folder / "report.json")
    (folder / "artifacts").symlink_to(report.parent / "artifacts")
    message = unreadable(grade_class(toy)["eve"])
    target = (report.parent / "artifacts").resolve()
    assert (
        message
        == f"{folder / 'artifacts'} is a symlink to {target}, outside its hand-in folder {folder}: not read"
    )


def test_a_folder_a_fifo_or_a_dangling_symlink_as_report_json(toy: Toy) -> None:
    toy.hand_in(toy.run("alice"), "alice")
    cls = toy.root / "class"
    (cls / "dora" / "report.json").mkdir(parents=True)
    (cls / "finn").mkdir()
    os.mkfifo(cls / "finn" / "report.json")  # reading it would wait forever for a writer
    (cls / "lena").mkdir()
    (cls / "lena" / "report.json").symlink_to("missing.json")
    rows = grade_class(toy)
    assert rows["alice"]["status"] == "graded"
    assert unreadable(rows["dora"]) == f"{cls / 'dora' / 'report.json'} is a folder, not a report file"
    assert unreadable(rows["finn"]) == (
        f"{cls / 'finn' / 'report.json'} is not a regular file (a FIFO, socket or device): not read"
    )
    assert unreadable(rows["lena"]) == (
        f"{cls / 'lena' / 'report.json'} is a symlink to missing.json, which does not exist"
    )


def test_thousands_of_files_are_listed_once_never_walked(toy: Toy, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = toy.hand_in(toy.run("alice"), "alice")
    cls = toy.root / "class"
    for i in range(3000):
        (cls / f"notes-{i}.txt").write_bytes(b"")
    many = alice.parent / "artifacts" / "many"
    many.mkdir()
    for i in range(3000):
        (many / f"{i}.json").write_bytes(b"{}")
    listed: list[str] = []
    real_scandir = os.scandir

    def spy(path: Any = ".") -> Any:
        listed.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", spy)  # the os module handins lists with
    found = discover([cls])
    monkeypatch.undo()
    assert [h.key for h in found] == ["alice"]
    assert listed == [str(cls)]  # the class folder once; nothing below a hand-in folder


def test_a_folder_past_the_entry_limit_is_one_line(toy: Toy, monkeypatch: pytest.MonkeyPatch) -> None:
    limit = 50  # the test's own limit, so the folder stays small
    monkeypatch.setattr(handins, "MAX_FOLDER_ENTRIES", limit)
    cls = toy.root / "class"
    cls.mkdir()
    for i in range(limit + 1):
        (cls / f"{i}.txt").write_bytes(b"")
    result = runner.invoke(app, ["grade", str(cls), "-o", str(toy.root / "out"), "--lab", "toy"])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 1
    assert f"hand-in folder {cls} holds more than {limit} entries (limit {limit})" in lines[0]
    assert not (toy.root / "out").exists()


def test_an_artifact_symlinked_out_of_the_report_folder_is_not_read(toy: Toy) -> None:
    report = toy.run("alice")
    data = json.loads(report.read_text())
    rel = data["inputs"]["program"]["artifact"]
    artifact = report.parent / rel
    outside = toy.root / "outside.asm"
    shutil.copy(artifact, outside)  # the very same bytes: only where it lies is wrong
    artifact.unlink()
    artifact.symlink_to(outside)
    result = runner.invoke(app, ["check", str(report), "--json"])
    assert result.exit_code == 1, result.output
    integrity = next(c for c in json.loads(result.stdout)["checks"] if c["id"] == "integrity")
    assert integrity["outcome"] == "fail"
    assert f"artifact {rel} is a symlink out of the report's folder: not read" in integrity["message"]


def test_signing_a_report_nested_too_deep_is_one_line(tmp_path: Any) -> None:
    from vmlab.grade.sign import write_key

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)  # 100,000 levels; a report has fewer than 10
    key = write_key(tmp_path / "k.key")
    result = runner.invoke(app, ["grade", "sign", str(deep), "--key-file", str(key)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"report {deep} nests JSON 100000 levels deep (limit 64): not a vmlab report" in result.output
    assert deep.read_text() == "[" * 100_000 + "]" * 100_000  # nothing written
