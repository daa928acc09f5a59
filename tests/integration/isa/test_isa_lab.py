"""The isa-emulation lab end to end: real engines, real child processes for the students' files, real
grading. Each task is graded on the student's file for it; the wrong solutions (students.py) fail with
a message naming the first diverging instruction or the count that is off."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from tests.helpers import failed_verdicts
from tests.integration.isa.students import FILES as SKELETON_FILES
from tests.integration.isa.students import SKELETONS, write
from typer.testing import CliRunner

from vmlab.cli.main import app
from vmlab.labs.pipeline import RunRequest, run_lab

runner = CliRunner()
TASKS = ["t1", "t2", "t3", "t4", "t5", "t6"]
LAB_DIR = SKELETONS.parent


def grade(report: Path) -> tuple[int, dict[str, dict[str, object]]]:
    result = runner.invoke(app, ["check", str(report), "--json"])
    return result.exit_code, {c["id"]: c for c in json.loads(result.stdout)["checks"]}


def run_students(
    tmp_path: Path, files: dict[str, Path], scenarios: list[int]
) -> dict[str, dict[str, object]]:
    """Only the task steps, with the students' files; every other engine's checks are skipped."""
    report = tmp_path / "r.json"
    steps = [*files, *(["t4-staged"] if "t4" in files else [])]  # the t4 input runs in both steps
    sets = {t: {"scenarios": scenarios} for t in steps}
    outcome = run_lab(RunRequest(lab="isa-emulation", steps=steps, sets=sets, inputs=files, output=report))
    assert outcome.exit_code == 0, {k: v.message for k, v in outcome.report.steps.items()}
    data = json.loads(report.read_text())
    for task, path in files.items():
        assert data["inputs"][task]["name"] == path.name and data["inputs"][task]["source"] == "student"
    return grade(report)[1]


def test_untouched_handout_fails_every_task_and_the_oracle_still_runs(
    tmp_path: Path, vmlab_home: Path
) -> None:
    """No --input at all: each task step runs its skeleton (the input's default), which raises; vmlab's
    reference engines are no step of the lab, while the oracle step (the speed baseline) works."""
    report = tmp_path / "r.json"
    steps = [*TASKS, "t4-staged", "oracle"]
    engines = [*TASKS, "t4-staged"]
    sets: dict[str, dict[str, object]] = {t: {"scenarios": [1, 3], "diagnose": 0} for t in engines}
    sets["oracle"] = {"scenarios": [1, 3], "repeats": 1}
    outcome = run_lab(RunRequest(lab="isa-emulation", steps=steps, sets=sets, output=report))
    assert outcome.exit_code == 0, {k: v.message for k, v in outcome.report.steps.items()}
    data = json.loads(report.read_text())
    for task in TASKS:
        assert data["inputs"][task]["source"] == "default"
        assert data["inputs"][task]["name"] == SKELETON_FILES[task]
    code, checks = grade(report)
    assert code == 1
    for task in engines:
        # S1 has no BACK7: t5's and t6's skeletons (whose TODOs are on taken exits and loops) pass it
        s3 = checks[f"oracle-S3[{task}]"]
        assert s3["outcome"] == "fail" and "NotImplementedError" in str(s3["measured"]), s3
        assert s3["required"]
        # the skeleton is the student's file as handed out, not vmlab's engine
        assert checks[f"is-student[{task}]"]["outcome"] == "pass"
    # the oracle's own outcomes are the published ones (the homework's S1 and S3)
    assert data["experiments"]["oracle"]["S1"]["values"]["outcome"] == "A=30003 instructions=10000"
    assert data["experiments"]["oracle"]["S3"]["values"]["outcome"] == "A=95 instructions=719821"
    assert data["experiments"]["oracle"]["S3"]["values"]["engine"] == "builtin:reference"


def test_is_student_is_required() -> None:
    lab = tomllib.loads((LAB_DIR / "lab.toml").read_text())
    (check,) = [c for c in lab["checks"] if c["id"] == "is-student"]
    assert check.get("required", True) is True
    for task in TASKS:
        assert lab["inputs"][task]["default"] == f"skeleton/{SKELETON_FILES[task]}"


@pytest.mark.slow
def test_model_solutions_pass_every_required_check(tmp_path: Path, vmlab_home: Path) -> None:
    """The whole lab as a student who solved every task runs it: the tutors' model solutions, solution/."""
    report = tmp_path / "r.json"
    argv = ["lab", "run", "isa-emulation", "-o", str(report)]
    for task in TASKS:
        argv += ["--input", f"{task}={LAB_DIR / 'solution' / SKELETON_FILES[task]}"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    code, checks = grade(report)
    assert failed_verdicts(list(checks.values())) == []
    assert code in (0, 1)  # 1 only through a timing check on a busy machine
    assert checks["oracle-S4[t1]"]["measured"] == "A=138 instructions=21516018"
    for task in TASKS:
        assert checks[f"is-student[{task}]"]["outcome"] == "pass"
    assert checks["t4-staged-blocks-S4"]["outcome"] == "pass"


def test_the_model_solutions_are_the_skeletons_filled_in() -> None:
    """solution/tN_*.py is students.py's correct fill-in of today's skeleton: neither drifts alone."""
    from tests.integration.isa.students import solution

    for task, name in SKELETON_FILES.items():
        assert (LAB_DIR / "solution" / name).read_text() == solution(task), name


def test_correct_students_pass_every_task(tmp_path: Path, vmlab_home: Path) -> None:
    files = {t: write(tmp_path, t) for t in TASKS}
    checks = run_students(tmp_path, files, [1, 2, 3, 4])
    for task in TASKS:
        for n in (1, 2, 3, 4):
            assert checks[f"oracle-S{n}[{task}]"]["outcome"] == "pass", checks[f"oracle-S{n}[{task}]"]
        assert checks[f"is-student[{task}]"]["outcome"] == "pass"
    counted = [c for c in checks.values() if str(c["id"]).startswith(tuple(f"{t}-" for t in TASKS))]
    # t2 1, t3 3, t4 2 + t4-staged 2, t5 3, t6 2: written down from lab.toml's count checks
    assert len(counted) == 13 and all(c["outcome"] == "pass" for c in counted), counted


@pytest.mark.parametrize(
    ("task", "check", "words"),
    [
        ("t1", "oracle-S3[t1]", "first divergence at offset"),
        ("t2", "oracle-S3[t2]", "first divergence at offset"),
        ("t3", "oracle-S3[t3]", "first divergence at offset"),
        ("t4", "oracle-S3[t4]", "first divergence at offset"),
        ("t5", "t5-chainings-S3", "measured 103728, expected == 2755"),
        ("t6", "oracle-S3[t6]", "first divergence at offset"),
    ],
)
def test_subtly_wrong_student_fails_its_task(
    tmp_path: Path, vmlab_home: Path, task: str, check: str, words: str
) -> None:
    checks = run_students(tmp_path, {task: write(tmp_path, task, wrong=True)}, [1, 3])
    assert checks[f"oracle-S1[{task}]"]["outcome"] == "pass"  # S1 has no loops: every bug hides there
    assert checks[check]["outcome"] == "fail"
    assert words in str(checks[check]["message"]), checks[check]


def test_off_by_one_names_the_first_diverging_back7(tmp_path: Path, vmlab_home: Path) -> None:
    checks = run_students(tmp_path, {"t1": write(tmp_path, "t1", wrong=True)}, [3])
    message = str(checks["oracle-S3[t1]"]["message"])
    assert message.startswith("measured 'A=95 instructions=778299; first divergence at offset ")
    assert "(BACK7): cut there, the reference ends" in message


def test_unfinished_skeleton_reports_where_it_stopped(tmp_path: Path, vmlab_home: Path) -> None:
    skeleton = Path(__file__).resolve().parents[3] / "labs" / "isa-emulation" / "skeleton" / "t1_interpret.py"
    checks = run_students(tmp_path, {"t1": skeleton}, [1])
    s1 = checks["oracle-S1[t1]"]
    assert s1["outcome"] == "fail"
    assert "NotImplementedError: opcode 2 at 0 is not implemented yet (t1_interpret.py:" in str(
        s1["measured"]
    )


def test_endless_student_engine_is_stopped_at_the_timeout(tmp_path: Path, vmlab_home: Path) -> None:
    endless = tmp_path / "endless.py"
    endless.write_text("def run(code, a, l):\n    while True:\n        pass\n")
    report = tmp_path / "r.json"
    sets = {"t1": {"scenarios": [1], "timeout": 1, "diagnose": 0}}
    run_lab(RunRequest(lab="isa-emulation", steps=["t1"], sets=sets, inputs={"t1": endless}, output=report))
    assert "no result within 1 s" in str(grade(report)[1]["oracle-S1[t1]"]["measured"])
