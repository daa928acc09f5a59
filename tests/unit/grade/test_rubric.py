"""Rubric points for written answers (vmlab.grade.rubric): the CSV's validation, and the points merged
into the class result, class.csv, junit.xml and Gradescope's results.json.

The toy lab of conftest.py, with two text questions added to task t1 (and a choice question on t2,
which is never graded here): t1 is `ok` (2 points) + `budget` (2) + q:why (3) + q:how (2) = 9 points
possible; the solution program passes `ok` and `budget`, so every student below starts from 4.
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from tests.unit.grade.conftest import LAB, Toy

from vmlab.errors import UsageError
from vmlab.grade.classgrade import GradeRequest, grade_class, merge
from vmlab.grade.model import ClassOptions, ClassResult
from vmlab.grade.outputs import write_all
from vmlab.grade.rubric import Rubric, apply_rubric, check_rubric, read_rubric

QUESTIONS = """
[inputs.answers]
kind = "file"
suffixes = [".toml"]

[[questions]]
id = "why"
task = "t1"
kind = "text"
prompt = "Why does one exit suffice?"
points = 3
min_words = 5

[[questions]]
id = "how"
task = "t1"
kind = "text"
prompt = "How would you measure an exit?"
points = 2
min_words = 5

[[questions]]
id = "pick"
task = "t2"
kind = "choice"
prompt = "Which?"
choices = ["this", "that"]
"""

LONG = "the whole line leaves in one exit"  # 7 words: passes min_words = 5
SHORT = "one exit"  # 2 words: too short


@pytest.fixture
def essay(toy: Toy) -> Toy:
    """The toy lab with questions; every student handed in the solution program."""
    (toy.lab_dir / "lab.toml").write_text(LAB + QUESTIONS)
    (toy.lab_dir / "solution").mkdir()
    (toy.lab_dir / "solution" / "answers.toml").write_text('[pick]\nanswer = "this"\n')
    return toy


def _hand_in(toy: Toy, student: str, answers: dict[str, str] | None) -> None:
    extra = {}
    if answers is not None:
        path = toy.root / "answers" / f"{student}.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text("".join(f'[{q}]\nanswer = "{a}"\n' for q, a in answers.items()))
        extra["answers"] = path
    toy.hand_in(toy.run(student, tasks=["t1"], extra=extra), student)


def _class(toy: Toy) -> Path:
    _hand_in(toy, "alice", {"why": LONG, "how": LONG})
    _hand_in(toy, "bob", {"why": LONG, "how": SHORT})
    _hand_in(toy, "carol", None)  # no answers file at all
    _hand_in(toy, "dave", {"why": LONG, "how": LONG})
    return toy.root / "class"


RUBRIC = """handin,question,points,comment,override
alice,why,2.5,"good, but ""one exit"" needs a reason",
alice,q:how,2,,
bob,why,1,,
bob,how,1,,
carol,why,3,answered on paper,yes
zed,why,1,,
"""


def _grade(toy: Toy, rubric: str | None, out: Path | None = None) -> ClassResult:
    path = None
    if rubric is not None:
        path = toy.root / "rubric.csv"
        path.write_text(rubric)
    result = grade_class(
        GradeRequest(
            hand_ins=[toy.root / "class"],
            lab="toy",
            options=ClassOptions(tasks=["t1"], near_copies="none"),
            rubric=read_rubric(path) if path else None,
        )
    )
    if out is not None:
        write_all(result, out)
    return result


def test_rubric_points_reach_class_json_csv_junit_and_gradescope(essay: Toy) -> None:
    _class(essay)
    out = essay.root / "out"
    result = _grade(essay, RUBRIC, out)
    by = {s.handin: s for s in result.students}
    # by hand: 4 from ok + budget, then the rubric:
    #   alice 2.5 (why) + 2 (how)                      = 8.5 of 9, nothing pending
    #   bob   1 (why); how is 2 words, its 1 refused   = 5   of 9
    #   carol no answers, why given 3 with override    = 7   of 9 (how failed: 0)
    #   dave  no rubric rows: both answers pending     = 4   of 9, 2 pending
    assert {k: (s.status, s.score, s.max_score) for k, s in by.items()} == {
        "alice": ("graded", 8.5, 9.0),
        "bob": ("graded", 5.0, 9.0),
        "carol": ("graded", 7.0, 9.0),
        "dave": ("graded", 4.0, 9.0),
    }
    assert {k: s.rubric_pending for k, s in by.items()} == {"alice": 0, "bob": 0, "carol": 0, "dave": 2}
    assert by["alice"].written["why"].comment == 'good, but "one exit" needs a reason'
    assert by["alice"].written["why"].answer == LONG
    assert by["carol"].written["why"].override and by["carol"].written["how"].state == "failed"
    unused = result.unused_rubric
    assert len(unused) == 2
    assert any(u.startswith("bob how: 1 points not applied") and "override" in u for u in unused)
    assert any(u.startswith("zed why: no such handin") for u in unused)

    data = json.loads((out / "class.json").read_text())
    alice = next(s for s in data["students"] if s["handin"] == "alice")
    assert alice["written"]["why"]["points"] == 2.5 and alice["written"]["why"]["max_points"] == 3
    assert data["unused_rubric"] == unused

    rows = {r["handin"]: r for r in csv.DictReader((out / "class.csv").open())}
    assert [
        (rows[k]["score"], rows[k]["rubric_points"], rows[k]["rubric_pending"]) for k in sorted(rows)
    ] == [
        ("8.5", "4.5", "0"),
        ("5", "1", "0"),
        ("7", "3", "0"),
        ("4", "0", "2"),
    ]

    gs = json.loads((out / "gradescope" / "alice" / "results.json").read_text())
    tests = {t["name"]: t for t in gs["tests"]}
    assert gs["score"] == 8.5
    assert tests["q:why"] == {
        "name": "q:why",
        "score": 2.5,
        "max_score": 3.0,
        "output": 'good, but "one exit" needs a reason',
        "visibility": "after_published",
    }
    assert tests["q:how"]["score"] == 2 and tests["q:how"]["max_score"] == 2
    assert tests["ok"]["visibility"] == "visible"
    dave = {
        t["name"]: t for t in json.loads((out / "gradescope" / "dave" / "results.json").read_text())["tests"]
    }
    assert (dave["q:why"]["score"], dave["q:why"]["max_score"]) == (0, 3)
    assert dave["q:why"]["visibility"] == "after_published"

    suites = {s.get("name"): s for s in ET.parse(out / "junit.xml").getroot()}
    case = suites["alice"].find("testcase[@name='q:why']")
    assert case is not None
    assert case.findtext("system-out") == 'rubric: 2.5 of 3 points: good, but "one exit" needs a reason'
    pending = suites["dave"].find("testcase[@name='q:how']")
    assert pending is not None and (pending.findtext("system-out") or "").startswith("rubric pending")


def test_merge_applies_the_rubric_given_and_no_rubric_leaves_every_answer_pending(essay: Toy) -> None:
    _class(essay)
    graded = _grade(essay, RUBRIC)
    # the merge applies its own rubric again: alice's why becomes 1 -> 4 + 1 + 0 (how: no row) = 5
    again = merge([graded], rubric=_rubric(essay, "handin,question,points\nalice,why,1\n"))
    alice = next(s for s in again.students if s.handin == "alice")
    assert (alice.score, alice.rubric_pending) == (5.0, 1)
    # without a rubric (as without decisions) nothing is applied: alice has her 4 from the checks
    bare = merge([graded])
    alice = next(s for s in bare.students if s.handin == "alice")
    assert (alice.score, alice.rubric_pending, bare.unused_rubric) == (4.0, 2, [])
    assert next(c for c in alice.checks if c.id == "q:why").message.startswith("7 words")


def test_rubric_points_do_not_rescue_a_zeroed_hand_in(essay: Toy) -> None:
    cls = _class(essay)
    # alice changes her program after the run: artifacts fail, the score is 0 whatever the rubric says
    (prog,) = (cls / "alice" / "artifacts").rglob("*.asm")
    prog.write_text(prog.read_text() + "; changed\n")
    result = _grade(essay, RUBRIC)
    alice = next(s for s in result.students if s.handin == "alice")
    assert {f.code for f in alice.flags} == {"artifacts"}
    assert (alice.status, alice.score, alice.computed_score) == ("review", None, 0.0)


def test_student_column_names_the_hand_in_of_that_student(essay: Toy) -> None:
    _class(essay)
    result = _grade(essay, "student,question,points\ndave,how,0.5\n")
    dave = next(s for s in result.students if s.handin == "dave")
    assert (dave.score, dave.rubric_pending) == (4.5, 1)


def _rubric(toy: Toy, text: str) -> Rubric:
    path = toy.root / "r.csv"
    path.write_text(text)
    return read_rubric(path)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("handin,question,points,grade\n", "unknown column 'grade'"),
        ("handin,question\n", "the header needs handin (or student), question, points"),
        ("handin,student,question,points\n", "the header needs handin (or student)"),
        ("handin,question,points\nalice,why,lots\n", "line 2: points 'lots' is not a number"),
        ("handin,question,points\nalice,why,-1\n", "line 2: points '-1' must be 0 or more"),
        ("handin,question,points\nalice,why,nan\n", "line 2: points 'nan' must be 0 or more"),
        ("handin,question,points\n,why,1\n", "line 2: handin and question must not be empty"),
        ("handin,question,points,override\nalice,why,1,maybe\n", "override 'maybe'"),
        ("handin,question,points\nalice,why,1\n\nalice,q:why,2\n", "line 4: a second row for handin 'alice'"),
        ("handin,question,points\nalice,why,1,extra\n", "line 2: 4 cells, the header has 3"),
    ],
)
def test_bad_rubric_files_fail_with_one_line(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "r.csv"
    path.write_text(text)
    with pytest.raises(UsageError) as e:
        read_rubric(path)
    assert said in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("row", "said"),
    [
        ("alice,whom,1", "'whom' is not a question of lab toy"),
        ("alice,pick,1", "'pick' is a choice question, graded automatically"),
        ("alice,how,2.5", "2.5 points for 'how', which is worth 2 (lab.toml)"),
    ],
)
def test_rubric_rows_are_checked_against_the_lab(essay: Toy, row: str, said: str) -> None:
    from vmlab.labs.catalog import load_lab

    rubric = _rubric(essay, f"handin,question,points\n{row}\n")
    with pytest.raises(UsageError) as e:
        check_rubric(rubric, load_lab("toy"))
    assert said in str(e.value)
    # and grading a class with it stops, with that line, before anything is graded
    _hand_in(essay, "alice", {"why": LONG})
    with pytest.raises(UsageError) as e:
        grade_class(GradeRequest(hand_ins=[essay.root / "class"], lab="toy", rubric=rubric))
    assert said in str(e.value)


def test_pending_rows_and_a_bom_are_read(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("\ufeffHandin,Question,Points,Comment\nalice,why,,later\nbob,how,1.5,ok\n")
    rubric = read_rubric(path)
    assert [(r.key, r.question, r.points, r.comment) for r in rubric.rows] == [
        ("alice", "why", None, "later"),
        ("bob", "how", 1.5, "ok"),
    ]
    assert apply_rubric([], rubric, whole=False) == ([], [])
