"""Per-student variants: derivation, the lab model, the pipeline, `vmlab check` and `vmlab grade`.

A toy lab `vary` (temporary VMLAB_LABS) has one step whose guest "exits" once per iteration plus once
at the end, like kvm-api's `out` program: exits = n + 1. Its n is the student's variant, and the
exact check compares the exits with `variant.n + 1`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vmlab.errors import LabError
from vmlab.labs.pipeline import RunRequest, run_lab
from vmlab.report.io import load_report

STEPS = """
from vmlab.labs.step import StepContext, StepParams
from vmlab.report.model import Experiment


class LoopParams(StepParams):
    n: int = 10
    line: str = "x"


def loop(params: LoopParams, ctx: StepContext) -> dict:
    exits = 0
    for _ in range(params.n):  # one exit per iteration ...
        exits += 1
    exits += 1  # ... and the final hlt
    return {"loop": Experiment(unit="exits", counts={"exits": exits}, text=params.line)}
"""

LAB = """
[lab]
name = "vary"
title = "A lab with per-student parameters"

[[tasks]]
id = "t1"
title = "count the exits"
experiments = ["loop"]

[experiments.loop]
runner = "vary_steps:loop"

[variants]
term = "2027-spring"

[variants.params.n]
set = ["loop.n"]
range = [100, 200]
step = 5

[variants.params.line]
set = ["loop.line"]
choices = [11, 22, 33]
format = "line {value}"

[[checks]]
id = "exits"
task = "t1"
kind = "expr"
expr = "loop.counts.exits == variant.n + 1"
points = 3
"""


def expected(student: str, name: str, term: str = "2027-spring") -> int:
    """The documented derivation, written out here: the first 8 bytes (big-endian) of
    sha256("vmlab variant\\0LAB\\0TERM\\0STUDENT\\0NAME") pick the k-th value."""
    msg = f"vmlab variant\0vary\0{term}\0{student}\0{name}".encode()
    k = int.from_bytes(hashlib.sha256(msg).digest()[:8])
    return {"n": 100 + (k % 21) * 5, "line": [11, 22, 33][k % 3]}[name]


@pytest.fixture
def vary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vmlab_home: Path) -> Path:
    labs = tmp_path / "labs"
    (labs / "vary").mkdir(parents=True)
    (labs / "vary" / "lab.toml").write_text(LAB)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "vary_steps.py").write_text(STEPS)
    monkeypatch.setenv("VMLAB_LABS", str(labs))
    monkeypatch.delenv("VMLAB_TERM", raising=False)
    monkeypatch.syspath_prepend(str(pkg))
    return tmp_path


def run(root: Path, student: str | None, sets: dict[str, dict[str, Any]] | None = None) -> Path:
    out = root / "runs" / f"{student}-{len(list(root.glob('runs/*')))}" / "report.json"
    run_lab(RunRequest(lab="vary", student=student, output=out, sets=sets or {}))
    return out


def check(report: Path) -> tuple[dict[str, Any], Any]:
    from vmlab.check.grader import grade_report
    from vmlab.labs.catalog import load_lab

    results, grade = grade_report(load_report(report), load_lab("vary"), report_dir=report.parent)
    return {r.id: r for r in results}, grade


def test_each_student_runs_their_own_parameters_and_passes(vary: Path) -> None:
    alice, bob = expected("alice", "n"), expected("bob", "n")
    assert alice != bob, "the test needs two students whose variants differ"
    for student, n in (("alice", alice), ("bob", bob)):
        report = load_report(run(vary, student))
        assert report.run.variant is not None
        assert report.run.variant.term == "2027-spring"
        assert report.run.variant.values == {"n": n, "line": f"line {expected(student, 'line')}"}
        assert report.steps["loop"].params["n"] == n
        assert report.experiments["loop"].counts["exits"] == n + 1  # type: ignore[union-attr]
    results, grade = check(run(vary, "alice"))
    assert results["exits"].outcome == "pass" and results["variant"].outcome == "pass"
    assert grade.score == 3 and grade.exit_code == 0


def test_values_stay_in_range_on_the_step_and_differ_by_term(
    vary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vmlab.labs.catalog import load_lab
    from vmlab.spec.variants import derive

    lab = load_lab("vary")
    ns = {derive(lab, f"s{i}")["n"] for i in range(200)}
    assert ns <= set(range(100, 201, 5)) and len(ns) > 15  # 21 values possible, nearly all drawn
    assert derive(lab, "alice", "2028-fall")["n"] == expected("alice", "n", "2028-fall")
    monkeypatch.setenv("VMLAB_TERM", "2028-fall")
    assert derive(lab, "alice")["n"] == expected("alice", "n", "2028-fall")


def test_a_copy_renamed_to_another_student_fails_and_scores_nothing(vary: Path) -> None:
    report = run(vary, "alice")
    data = json.loads(report.read_text())
    data["run"]["student"] = "bob"
    report.write_text(json.dumps(data))
    results, grade = check(report)
    assert results["exits"].outcome == "pass"  # the counts agree with the parameters they ran with ...
    assert results["variant"].outcome == "fail"  # ... which are alice's, not bob's
    assert f"n is {expected('alice', 'n')}, expected {expected('bob', 'n')} for student 'bob'" in (
        results["variant"].message
    )
    assert grade.score == 0 and grade.exit_code == 1


def test_a_variant_edited_to_match_still_ran_other_parameters(vary: Path) -> None:
    report = run(vary, "alice")
    data = json.loads(report.read_text())
    data["run"]["student"] = "bob"
    data["run"]["variant"]["values"] = {"n": expected("bob", "n"), "line": f"line {expected('bob', 'line')}"}
    report.write_text(json.dumps(data))
    results, grade = check(report)
    assert results["variant"].outcome == "fail"
    assert f"step loop ran with n={expected('alice', 'n')}, the variant's is {expected('bob', 'n')}" in (
        results["variant"].message
    )
    assert results["exits"].outcome == "fail"  # alice's n + 1 exits, bob's n + 1 expected
    assert grade.score == 0


def test_a_set_that_replaces_the_variant_is_said_and_fails(vary: Path) -> None:
    said: list[str] = []
    out = vary / "runs" / "set" / "report.json"
    run_lab(RunRequest(lab="vary", student="alice", output=out, sets={"loop": {"n": 7}}), said.append)
    assert any("--set loop.n replaces your variant's value" in s for s in said)
    results, _ = check(out)
    assert results["variant"].outcome == "fail"
    assert "step loop ran with n=7" in results["variant"].message


def test_without_a_student_id_the_anonymous_variant_runs_and_says_so(vary: Path) -> None:
    said: list[str] = []
    out = vary / "runs" / "anon" / "report.json"
    run_lab(RunRequest(lab="vary", student=None, output=out), said.append)
    assert any("no student id" in s for s in said)
    assert load_report(out).steps["loop"].params["n"] == expected("", "n")
    results, _ = check(out)
    assert results["variant"].outcome == "pass" and "anonymous" in results["variant"].message


def test_a_report_without_a_variant_path_is_missing(vary: Path) -> None:
    from vmlab.spec.paths import PathMissing, resolve

    report = load_report(run(vary, "alice"))
    assert resolve(report, "variant.n") == expected("alice", "n")
    bare = report.model_copy(update={"run": report.run.model_copy(update={"variant": None})})
    with pytest.raises(PathMissing, match="variant is not in the report"):
        resolve(bare, "variant.n")
    with pytest.raises(PathMissing):
        resolve(report, "variant.nope")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('set = ["loop.n"]\nrange = [1, 5]\nchoices = [1, 2]', "exactly one of range and choices"),
        ('set = ["loop.n"]', "exactly one of range and choices"),
        ('set = ["loop.n"]\nrange = [5, 5]', "lo must be below hi"),
        ('set = ["nostep.n"]\nrange = [1, 5]', "'nostep.n', whose step is not declared"),
        ('set = ["loop.n"]\nrange = [1, 5]\nformat = "{x}"', "only {value} may be used"),
        ('set = ["loop"]\nrange = [1, 5]', "should match pattern"),
    ],
)
def test_a_bad_variant_table_is_one_line_naming_it(vary: Path, table: str, message: str) -> None:
    from vmlab.labs.catalog import load_lab

    lab_toml = vary / "labs" / "vary" / "lab.toml"
    head, _, _ = LAB.partition("[variants.params.n]")
    lab_toml.write_text(head + "[variants.params.n]\n" + table + "\n")
    with pytest.raises(LabError, match="variant") as e:
        load_lab("vary")
    assert message in str(e.value)


def test_two_variants_setting_one_parameter_are_refused(vary: Path) -> None:
    from vmlab.labs.catalog import load_lab

    lab_toml = vary / "labs" / "vary" / "lab.toml"
    lab_toml.write_text(LAB + '\n[variants.params.again]\nset = ["loop.n"]\nrange = [1, 5]\n')
    with pytest.raises(LabError, match="which another variant sets too"):
        load_lab("vary")


def test_lab_variant_prints_a_students_parameters(vary: Path) -> None:
    from vmlab.cli.main import app

    res = CliRunner().invoke(app, ["lab", "variant", "vary", "--student", "bob", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["values"] == {"n": expected("bob", "n"), "line": f"line {expected('bob', 'line')}"}
    assert data["term"] == "2027-spring"
    res = CliRunner().invoke(app, ["lab", "variant", "warmup-does-not-exist"])
    assert res.exit_code == 2


def test_grade_flags_a_hand_in_that_is_not_its_students_variant(vary: Path) -> None:
    from vmlab.grade.classgrade import GradeRequest, grade_class

    honest = run(vary, "alice")
    copied = run(vary, "alice")  # carol hands in a run of alice's parameters, under her own name
    data = json.loads(copied.read_text())
    data["run"]["student"] = "carol"
    carols_own = {"n": expected("carol", "n"), "line": f"line {expected('carol', 'line')}"}
    data["run"]["variant"]["values"] = carols_own
    copied.write_text(json.dumps(data))
    anonymous = run(vary, None)
    cls = vary / "class"
    for folder, report in (("alice", honest), ("carol", copied), ("dave", anonymous)):
        shutil.copytree(report.parent, cls / folder)
    rows = {s.handin: s for s in grade_class(GradeRequest(hand_ins=[cls], lab="vary")).students}
    assert [f.code for f in rows["alice"].flags] == []
    assert rows["alice"].status == "graded" and rows["alice"].computed_score == 3
    carol = [f for f in rows["carol"].flags if f.code == "variant-mismatch"]
    assert carol and "step loop ran with n=" in carol[0].message
    assert rows["carol"].status == "review" and rows["carol"].score is None
    dave = [f for f in rows["dave"].flags if f.code == "variant-mismatch"]
    assert dave and "not dave's variant" in dave[0].message
    assert rows["dave"].status == "review"


def test_grade_derives_for_the_tutors_term(vary: Path) -> None:
    from vmlab.grade.classgrade import GradeRequest, grade_class
    from vmlab.grade.model import ClassOptions

    shutil.copytree(run(vary, "alice").parent, vary / "class" / "alice")
    req = GradeRequest(hand_ins=[vary / "class"], lab="vary", options=ClassOptions(term="2028-fall"))
    (row,) = grade_class(req).students
    assert "variant-mismatch" in [f.code for f in row.flags]
    assert "drawn for term '2027-spring', the lab's term is '2028-fall'" in row.flags[-1].message


def test_lab_show_lists_the_parameters_and_never_a_value(vary: Path) -> None:
    from vmlab.cli.main import app

    res = CliRunner().invoke(app, ["lab", "show", "vary"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert "vmlab lab variant vary --student ID" in res.stdout
    assert "100..200 in steps of 5" in res.stdout and "one of 11, 22, 33" in res.stdout
    assert max(len(line) for line in res.stdout.splitlines()) <= 80
