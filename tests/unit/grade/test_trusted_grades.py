"""Grades a tutor can trust, on real runs of the toy lab (tests/unit/grade/conftest.py), no /dev/kvm.

Each attack is what a student who wants the grade without the work would do to report.json; the
expected verdict follows from the lab (its points: t1 `ok` 2 + `budget` 2, t2 `timed` 1) and from how
the copy was altered, never from the grader's own output. Before fail-closed grading, every one of these
gave full marks without a flag.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from tests.unit.grade.conftest import SKELETON, Toy
from typer.testing import CliRunner

from vmlab.cli.main import app

LAB_POINTS = 5.0  # ok 2 + budget 2 + timed 1
T1_POINTS = 4.0


def grade(toy: Toy, *args: str, cls: str = "class", code: int = 0) -> dict[str, Any]:

    out = toy.root / f"out-{cls}"
    res = CliRunner().invoke(app, ["grade", str(toy.root / cls), "-o", str(out), "--json", *args])
    assert res.exit_code == code, res.output
    if code != 0:
        return {"output": res.output}
    data: dict[str, Any] = json.loads(res.stdout)
    data["rows"] = {s["handin"]: s for s in data["students"]}
    data["out"] = out
    data["class"] = json.loads((out / "class.json").read_text())
    data["full"] = {s["handin"]: s for s in data["class"]["students"]}
    return data


def test_an_honest_class_grades_full_marks_unflagged(toy: Toy) -> None:
    for s in ("alice", "bob"):
        toy.hand_in(toy.run(s), s)
    g = grade(toy)
    for s in ("alice", "bob"):
        row = g["rows"][s]
        assert (row["status"], row["score"], row["max_score"], row["flags"]) == (
            "graded",
            LAB_POINTS,
            LAB_POINTS,
            [],
        )
        gs = json.loads((g["out"] / "gradescope" / s / "results.json").read_text())
        assert gs["score"] == LAB_POINTS and "output" not in gs


def test_a_failing_task_marked_skipped_with_its_experiment_deleted_scores_zero(toy: Toy) -> None:
    honest = toy.hand_in(toy.run("carol", SKELETON, tasks=["t1"]), "carol")
    cheat = toy.hand_in(toy.run("dave", SKELETON, tasks=["t1"]), "dave")

    def skip(d: dict[str, Any]) -> None:
        d["steps"]["count"].update(status="skipped", message="requires kvm")
        del d["experiments"]["count"]
        d.pop("checks"), d.pop("grade")  # and nothing left to compare with

    toy.edit(cheat, skip)
    g = grade(toy, "--task", "t1")
    # honest: ok passes (2), budget fails (5 outs > 3): 2 of the lab's 4 points for t1
    assert (g["rows"]["carol"]["score"], g["rows"]["carol"]["max_score"]) == (2.0, T1_POINTS)
    dave = g["full"]["dave"]
    assert (dave["score"], dave["max_score"]) == (0.0, T1_POINTS)  # the denominator is the lab's
    msgs = {c["id"]: c["message"] for c in dave["checks"]}
    assert msgs["ok"] == msgs["budget"] == "step count was skipped: requires kvm"
    gs = json.loads((g["out"] / "gradescope" / "dave" / "results.json").read_text())
    assert sum(t["max_score"] for t in gs["tests"]) == T1_POINTS and gs["score"] == 0.0
    # graded on every task (the default), the never-run t2 counts too
    g = grade(toy)
    assert (g["rows"]["carol"]["score"], g["rows"]["carol"]["max_score"]) == (2.0, LAB_POINTS)
    assert honest.exists()


@pytest.mark.parametrize("status", ["error", "interrupted", "not_run"])
def test_any_step_that_did_not_run_fine_scores_zero(toy: Toy, status: str) -> None:
    cheat = toy.hand_in(toy.run("erin", SKELETON, tasks=["t1"]), "erin")
    toy.edit(cheat, lambda d: d["steps"]["count"].update(status=status, message="timed out after 120 s"))
    row = grade(toy, "--task", "t1")["rows"]["erin"]
    assert (row["computed_score"], row["max_score"]) == (0.0, T1_POINTS)


def test_deleting_the_steps_block_never_grades_what_is_left_as_an_old_report(toy: Toy) -> None:
    cheat = toy.hand_in(toy.run("fay", SKELETON, tasks=["t1"]), "fay")

    def strip(d: dict[str, Any]) -> None:
        d["steps"] = {}
        d["experiments"]["count"]["counts"]["outs"] = 1  # and the figure the check reads

    toy.edit(cheat, strip)
    row = grade(toy, "--task", "t1")["full"]["fay"]
    assert row["computed_score"] == 0.0  # no step record: the step did not run
    assert "verdict-edited" in {f["code"] for f in row["flags"]}


def test_an_unknown_step_status_makes_the_hand_in_invalid(toy: Toy) -> None:
    cheat = toy.hand_in(toy.run("gus"), "gus")
    toy.edit(cheat, lambda d: d["steps"]["count"].update(status="passed-on-my-laptop"))
    row = grade(toy)["full"]["gus"]
    assert row["status"] == "invalid" and row["score"] is None
    assert row["flags"][0]["code"] == "unreadable" and "steps.count.status" in row["flags"][0]["message"]


def test_a_blank_lab_hash_is_flagged_and_held(toy: Toy) -> None:
    cheat = toy.hand_in(toy.run("hal"), "hal")
    toy.edit(cheat, lambda d: d["run"].update(lab_sha256=""))
    g = grade(toy)
    row = g["rows"]["hal"]
    assert row["flags"] == ["lab-hash-missing"] and row["status"] == "review" and row["score"] is None
    assert row["computed_score"] == LAB_POINTS  # the checks pass: it is the flag that holds the score
    with (g["out"] / "class.csv").open() as f:
        csv_row = next(r for r in csv.DictReader(f) if r["handin"] == "hal")
    assert (csv_row["status"], csv_row["score"], csv_row["computed_score"]) == ("review", "", "5")
    gs = json.loads((g["out"] / "gradescope" / "hal" / "results.json").read_text())
    assert gs["score"] == 0 and "under review" in gs["output"]


def test_a_checks_block_that_claims_more_than_the_report_shows_is_flagged(toy: Toy) -> None:
    cheat = toy.hand_in(toy.run("ivan", SKELETON), "ivan")

    def claim(d: dict[str, Any]) -> None:
        for c in d["checks"]:
            if c["id"] == "budget":
                c.update(outcome="pass", score=2.0)
        d["grade"]["score"] = LAB_POINTS

    toy.edit(cheat, claim)
    row = grade(toy)["full"]["ivan"]
    (flag,) = [f for f in row["flags"] if f["code"] == "verdict-edited"]
    assert "budget: pass in the report, fail now" in flag["message"]
    assert row["computed_score"] == 3.0  # ok 2 + timed 1: recomputed, never taken from the report


def test_identity_comes_from_the_hand_in_and_every_output_is_its_own(toy: Toy) -> None:
    report = toy.run("judy")
    toy.hand_in(report, "judy")
    toy.hand_in(report, "ken")  # judy's unchanged hand-in, in ken's folder
    g = grade(toy)
    ken = g["full"]["ken"]
    assert ken["student"] == "ken" and ken["claimed_student"] == "judy"
    assert {f["code"]: f["message"] for f in ken["flags"]}["identity"] == (
        "the report names student 'judy'; it was handed in as 'ken'"
    )
    assert {"same-submission", "duplicate-run-id"} <= {f["code"] for f in ken["flags"]}
    files = {
        p.parent.name: json.loads(p.read_text()) for p in (g["out"] / "gradescope").glob("*/results.json")
    }
    assert set(files) == {"judy", "ken"}  # one file per hand-in, none overwritten
    assert files["ken"]["extra_data"]["student"] == "ken" and "judy" not in json.dumps(files["ken"])


def test_a_roster_maps_hand_ins_to_ids_and_names_who_is_missing(toy: Toy) -> None:
    toy.hand_in(toy.run("a1@uni.example"), "a1@uni.example")
    toy.hand_in(toy.run("stranger"), "stranger")
    roster = toy.root / "roster.csv"
    roster.write_text("Student_ID,Email\n1001,a1@uni.example\n1002,b2@uni.example\n")
    g = grade(toy, "--roster", str(roster))
    assert g["full"]["a1@uni.example"]["student"] == "1001"
    assert g["rows"]["a1@uni.example"]["flags"] == []  # the report names the e-mail the roster knows
    assert "not-in-roster" in g["rows"]["stranger"]["flags"]
    assert g["missing"] == ["1002"]
    with (g["out"] / "class.csv").open() as f:
        assert {r["student"]: r["status"] for r in csv.DictReader(f)}["1002"] == "missing"
    roster.write_text("email\nx@y\n")
    assert "no student id column" in grade(toy, "--roster", str(roster), code=2)["output"]


def test_the_flag_policy_decides_what_is_published(toy: Toy) -> None:
    cheat = toy.hand_in(toy.run("lee"), "lee")
    toy.edit(cheat, lambda d: d["run"].update(lab_sha256=""))
    zero = grade(toy, "--on-flag", "zero")["rows"]["lee"]
    assert (zero["status"], zero["score"]) == ("flagged", 0.0)
    keep = grade(toy, "--on-flag", "keep")["rows"]["lee"]
    assert (keep["status"], keep["score"]) == ("flagged", LAB_POINTS)
    none = grade(toy, "--held-output", "none")
    assert none["rows"]["lee"]["status"] == "review"
    assert not (none["out"] / "gradescope" / "lee").exists()
    assert "--on-flag 'lenient'" in grade(toy, "--on-flag", "lenient", code=2)["output"]


def test_decisions_are_applied_and_pinned_to_the_report(toy: Toy) -> None:
    a = toy.hand_in(toy.run("mia"), "mia")
    toy.hand_in(toy.run("ned"), "ned")
    toy.hand_in(toy.run("ola"), "ola")
    for p in (a, toy.root / "class" / "ned" / "report.json", toy.root / "class" / "ola" / "report.json"):
        toy.edit(p, lambda d: d["run"].update(lab_sha256=""))
    import hashlib

    sha = hashlib.sha256(a.read_bytes()).hexdigest()
    decisions = toy.root / "decisions.toml"
    decisions.write_text(
        f'[mia]\naction = "accept"\nreason = "lab hash lost by an old vmlab"\nreport_sha256 = "{sha}"\n'
        '[ned]\naction = "points"\npoints = 3.5\nreason = "partial credit after the meeting"\n'
        '[nobody]\naction = "zero"\nreason = "typo in the key"\n'
    )
    g = grade(toy, "--decisions", str(decisions))
    assert (g["rows"]["mia"]["status"], g["rows"]["mia"]["score"]) == ("decided", LAB_POINTS)
    assert (g["rows"]["ned"]["status"], g["rows"]["ned"]["score"]) == ("decided", 3.5)
    assert g["rows"]["ola"]["status"] == "review"
    assert g["unused_decisions"] == ["nobody"]
    site_ready = g["full"]["ned"]["decision"]
    assert site_ready == {
        "action": "points",
        "points": 3.5,
        "reason": "partial credit after the meeting",
        "report_sha256": None,
    }
    # mia hands in again: the decision was made on the old report, so she is held once more
    toy.edit(a, lambda d: d.update(run_id="another-run"))
    again = grade(toy, "--decisions", str(decisions))["full"]["mia"]
    assert again["status"] == "review" and "decision-stale" in {f["code"] for f in again["flags"]}
    decisions.write_text('[mia]\naction = "maybe"\nreason = "?"\n')
    out = grade(toy, "--decisions", str(decisions), code=2)["output"]
    assert "[mia] action" in out


def test_a_rerun_lab_hand_in_without_its_inputs_is_flagged_and_scores_zero(toy: Toy) -> None:
    toy.hand_in(toy.run("pam"), "pam")
    cheat = toy.hand_in(toy.run("quinn"), "quinn")

    def withhold(d: dict[str, Any]) -> None:
        d["inputs"] = {}

    toy.edit(cheat, withhold)
    key = toy.root / "rerun.key"
    from vmlab.grade.sign import write_key

    write_key(key)
    g = grade(toy, "--rerun", "--secret-file", str(key))
    assert g["rows"]["pam"]["status"] == "graded" and g["rows"]["pam"]["score"] == LAB_POINTS
    row = g["full"]["quinn"]
    assert "rerun-input-missing" in {f["code"] for f in row["flags"]}
    assert row["computed_score"] == 0.0 and row["status"] == "review"
    assert any(c["id"] == "rerun:inputs[program]" and c["outcome"] == "fail" for c in row["checks"])


def test_a_schema_1_hand_in_is_never_clean_full_marks(tmp_path: Path, vmlab_home: Path) -> None:
    from vmlab.grade.classgrade import GradeRequest, grade_class
    from vmlab.grade.model import ClassOptions

    data = Path(__file__).resolve().parents[2] / "data" / "reports" / "kvm-api-v1.json"
    (tmp_path / "sam").mkdir()
    (tmp_path / "sam" / "report.json").write_text(data.read_text())
    req = GradeRequest(hand_ins=[tmp_path], lab="kvm-api", options=ClassOptions(on_flag="keep"))
    (row,) = grade_class(req).students
    assert row.status == "flagged" and "old-schema" in {f.code for f in row.flags}
    passed = [c for c in row.checks if c.outcome == "pass" and c.id != "integrity"]
    assert passed and all(c.message.startswith("unproven:") for c in passed)
    (held,) = grade_class(GradeRequest(hand_ins=[tmp_path], lab="kvm-api")).students
    assert held.status == "review" and held.score is None


def test_a_check_the_grader_cannot_evaluate_holds_the_hand_in_for_review(toy: Toy) -> None:
    toy.hand_in(toy.run("uma"), "uma")
    lab = toy.lab_dir / "lab.toml"
    # the lab author's expression divides by zero on every report: the grader's fault, not uma's
    lab.write_text(
        lab.read_text()
        + '\n[[checks]]\nid = "per-out"\ntask = "t1"\nkind = "expr"\n'
        + 'expr = "count.counts.lines / (count.counts.outs - count.counts.outs) > 0"\n'
    )
    row = grade(toy)["full"]["uma"]
    per_out = next(c for c in row["checks"] if c["id"] == "per-out")
    assert per_out["outcome"] == "error" and per_out["message"].startswith("cannot grade:")
    assert "grader-error" in {f["code"] for f in row["flags"]}
    assert row["status"] == "review" and row["score"] is None
    assert row["max_score"] == LAB_POINTS + 1  # the broken check still counts: nothing is given away


def _forge(d: dict[str, Any], student: str) -> None:
    """What a careful copier does: a new run id and timestamps, every sample moved by < 1 % (a fixed
    pattern of +-0.9 %, then shuffled), the summaries recomputed, their own name."""
    import datetime as dt
    import random

    from vmlab.report.stats import summarize

    rng = random.Random(7)
    d["run_id"] = f"forged-{student}"
    d["run"]["student"] = student
    shift = dt.timedelta(hours=5, microseconds=123)
    d["created_at"] = (dt.datetime.fromisoformat(d["created_at"]) + shift).isoformat()
    d["run"]["finished_at"] = (dt.datetime.fromisoformat(d["run"]["finished_at"]) + shift).isoformat()
    for step in d["steps"].values():
        if step.get("started_at"):
            step["started_at"] = (dt.datetime.fromisoformat(step["started_at"]) + shift).isoformat()
    exp = d["experiments"]["time"]
    moved = [x * (1 + 0.009 * (-1) ** i) for i, x in enumerate(exp["samples"])]
    rng.shuffle(moved)
    exp["samples"] = moved
    exp["summary"] = summarize(moved).model_dump()
    d.pop("checks"), d.pop("grade")


def test_a_copy_with_samples_moved_by_under_one_percent_is_a_near_copy(toy: Toy) -> None:
    original = toy.run("vera")
    toy.hand_in(original, "vera")
    toy.hand_in(toy.run("walt"), "walt")  # honest, on the same machine: not flagged
    copy = toy.hand_in(original, "xena")
    toy.edit(copy, lambda d: _forge(d, "xena"))
    g = grade(toy)
    assert g["rows"]["walt"]["flags"] == [] and g["rows"]["walt"]["status"] == "graded"
    xena = {f["code"]: f["message"] for f in g["full"]["xena"]["flags"]}
    # the program is vera's, byte for byte; the toy's steps take milliseconds, too short for its
    # spacing to tell (SPACING_EVIDENCE)
    assert set(xena) == {"near-copy", "same-submission"}
    assert xena["near-copy"].startswith("samples nearly the same as vera's (similarity 0.99")
    assert "time (n=32)" in xena["near-copy"]
    assert "near-copy" in g["rows"]["vera"]["flags"]  # both sides are held: who copied is the tutor's call
    off = grade(toy, "--near-copies", "none")
    assert "near-copy" not in off["rows"]["xena"]["flags"]


LONG_SOLUTION = """\
; prints the line with one exit: a hypercall whose request block points at the line
    mov si, line          ; the line the VMM placed
    mov cx, 24            ; its length
    mov di, request
    mov [di], si
    mov [di + 2], cx
    mov dx, 0x500         ; the hypercall port
    mov ax, di
    out dx, ax            ; the one exit
    cmp ax, 0
    jne failed
    print
    hlt
failed:
    mov al, 0x21
    out 0xe9, al
    hlt
request: dw 0, 0
line: db 0
"""


def test_a_program_with_comments_labels_and_layout_changed_is_a_near_copy(toy: Toy) -> None:
    disguised = (
        LONG_SOLUTION.replace("failed", "oops")
        .replace("request", "blk")
        .replace("; the one exit", "; MY exit (wrote this myself)")
        .replace("0x500", "1280")
        .replace("    ", "\t")
    )
    toy.hand_in(toy.run("yuri", LONG_SOLUTION), "yuri")
    toy.hand_in(toy.run("zoe", disguised), "zoe")
    toy.hand_in(toy.run("abe"), "abe")  # the short canonical solution: convergent, never evidence
    toy.hand_in(toy.run("bea"), "bea")
    g = grade(toy)
    zoe = {f["code"]: f["message"] for f in g["full"]["zoe"]["flags"]}
    assert zoe["near-copy"].startswith("code nearly the same as yuri's (similarity 1.00): program:")
    assert g["rows"]["abe"]["flags"] == [] and g["rows"]["bea"]["flags"] == []


def test_a_choice_answer_graded_without_the_key_on_the_students_machine_is_no_edit(toy: Toy) -> None:
    lab = toy.lab_dir / "lab.toml"
    lab.write_text(
        lab.read_text()
        + '\n[inputs.answers]\nkind = "file"\nsuffixes = [".toml"]\n'
        + '\n[[questions]]\nid = "why"\ntask = "t1"\nkind = "choice"\nprompt = "Why one exit?"\n'
        + 'choices = ["a hypercall", "luck"]\n'
    )
    answers = toy.root / "answers.toml"
    answers.write_text('[why]\nanswer = "a hypercall"\n')
    # the student's kit has no solution/: their own verdict on the choice is `error` (no key)
    report = toy.run("lou", extra={"answers": answers})
    said = {c["id"]: c["outcome"] for c in json.loads(report.read_text())["checks"]}
    assert said["q:why"] == "error"
    toy.hand_in(report, "lou")
    (toy.lab_dir / "solution").mkdir()
    (toy.lab_dir / "solution" / "answers.toml").write_text('[why]\nanswer = "a hypercall"\n')
    row = grade(toy)["full"]["lou"]
    assert "verdict-edited" not in {f["code"] for f in row["flags"]}
    assert {c["id"]: c["outcome"] for c in row["checks"]}["q:why"] == "pass"
    assert row["status"] == "graded" and row["score"] == LAB_POINTS + 1


def test_a_copy_with_every_time_shifted_keeps_its_spacing() -> None:
    import datetime as dt

    from vmlab.grade.handins import _spacing

    t0 = dt.datetime(2026, 12, 4, 20, 59, 38, 810853, tzinfo=dt.UTC)

    def run(*gaps_us: int, start: dt.datetime = t0) -> list[dt.datetime | None]:
        times = [start]
        for g in gaps_us:
            times.append(times[-1] + dt.timedelta(microseconds=g))
        return [*times, None]  # a step that never started has no time

    # a real kvm-api run's gaps: 2874 us, 445429 us, 426260 us, 9099 us. In 1 in 0.01 * g / 1 us:
    # log10 of 28.7, 4454, 4263, 91.0 = 1.46 + 3.65 + 3.63 + 1.96 = 10.7 >= SPACING_EVIDENCE (8)
    kvm = (2874, 445429, 426260, 9099)
    shifted = run(*kvm, start=t0 + dt.timedelta(minutes=41, microseconds=7))
    assert _spacing(run(*kvm)) is not None and _spacing(run(*kvm)) == _spacing(shifted)
    assert _spacing(run(2874, 445430, 426260, 9099)) != _spacing(run(*kvm))  # one microsecond apart
    # the toy's: 3 ms and 16 ms: log10 30 + log10 160 = 3.7, too short to tell
    assert _spacing(run(3000, 16000)) is None
