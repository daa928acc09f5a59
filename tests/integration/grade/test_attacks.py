"""The attacks of the trusted-grades issue, on real kvm-api hand-ins (task `own`).

A student whose own program fails honestly (the skeleton: the right line, 25 exits > 3) then edits
report.json the way someone who wants the grade without the work would. Before fail-closed grading
each of these gave 100 % without a flag; the expected verdicts follow from kvm-api's lab.toml (task
`own`: own-output 2 points + own-exits 2 points) and from the edit, not from the grader's output.
The same logic is tested without /dev/kvm on the toy lab (tests/unit/grade/test_trusted_grades.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.integration.grade.conftest import DATA, copy_hand_in, edit, run

pytestmark = pytest.mark.kvm

OWN_POINTS = 4.0


@pytest.fixture(scope="module")
def skeleton_run(runs_root: Path, kvm_ok: None) -> Path:
    """kvm-api task own with the skeleton program: own-output passes, own-exits fails (2 of 4)."""
    return run("kvm-api", runs_root / "attacks" / "tom", "tom", tasks=["own"])


def _grade(cli: Any, hand: Path, out: Path, *extra: object) -> dict[str, dict[str, Any]]:
    res = cli("grade", hand, "-o", out, "--lab", "kvm-api", "--task", "own", "--json", *extra)
    assert res.exit_code == 0, res.output
    return {s["handin"]: s for s in json.loads((out / "class.json").read_text())["students"]}


@pytest.mark.parametrize("status", ["error", "skipped"])
def test_a_failing_step_marked_error_or_skipped_with_its_experiment_deleted_scores_zero(
    skeleton_run: Path, tmp_path: Path, cli: Any, status: str
) -> None:
    hand = tmp_path / "hand-ins"
    copy_hand_in(skeleton_run, hand / "tom")
    copy_hand_in(skeleton_run, hand / "tim")
    edit(hand / "tim" / "report.json", lambda d: d["run"].update(student="tim"))

    def hide(d: dict[str, Any]) -> None:
        d["steps"]["own-program"].update(status=status, message="requires kvm")
        del d["experiments"]["own-program"]
        d.pop("checks", None), d.pop("grade", None)

    edit(hand / "tim" / "report.json", hide)
    got = _grade(cli, hand, tmp_path / "out")
    assert (got["tom"]["computed_score"], got["tom"]["max_score"]) == (2.0, OWN_POINTS)  # honest
    assert (got["tim"]["computed_score"], got["tim"]["max_score"]) == (0.0, OWN_POINTS)
    gs = json.loads((tmp_path / "out" / "gradescope" / "tim" / "results.json").read_text())
    counted = [t for t in gs["tests"] if t["max_score"]]
    assert sum(t["max_score"] for t in counted) == OWN_POINTS and gs["score"] == 0.0


def test_the_same_with_the_lab_hash_blanked_is_flagged_and_held(
    skeleton_run: Path, tmp_path: Path, cli: Any
) -> None:
    hand = tmp_path / "hand-ins"
    copy_hand_in(skeleton_run, hand / "tom")

    def hide(d: dict[str, Any]) -> None:
        d["steps"]["own-program"].update(status="skipped", message="requires kvm")
        del d["experiments"]["own-program"]
        d["run"]["lab_sha256"] = ""

    edit(hand / "tom" / "report.json", hide)
    tom = _grade(cli, hand, tmp_path / "out")["tom"]
    assert tom["computed_score"] == 0.0 and tom["status"] == "review" and tom["score"] is None
    assert "lab-hash-missing" in {f["code"] for f in tom["flags"]}


def test_another_students_unchanged_hand_in_is_flagged_identity(
    kvm_runs: list[Path], tmp_path: Path, cli: Any
) -> None:
    hand = tmp_path / "hand-ins"
    copy_hand_in(kvm_runs[0], hand / "s01")
    copy_hand_in(kvm_runs[0], hand / "s21")  # s01's hand-in in s21's folder
    got = _grade(cli, hand, tmp_path / "out")
    flags = {f["code"]: f["message"] for f in got["s21"]["flags"]}
    assert flags["identity"] == "the report names student 's01'; it was handed in as 's21'"
    assert got["s21"]["status"] == "review" and got["s21"]["student"] == "s21"
    files = sorted(p.parent.name for p in (tmp_path / "out" / "gradescope").glob("*/results.json"))
    assert files == ["s01", "s21"]


@pytest.mark.docker
def test_a_hand_in_without_its_inputs_block_cannot_skip_the_rerun(
    kvm_runs: list[Path], tmp_path: Path, cli: Any, docker_ok: None
) -> None:
    from vmlab.grade.sign import write_key

    hand = tmp_path / "hand-ins"
    copy_hand_in(kvm_runs[2], hand / "s03")
    edit(hand / "s03" / "report.json", lambda d: d.update(inputs={}))
    secret = write_key(tmp_path / "rerun.key")
    s03 = _grade(cli, hand, tmp_path / "out", "--rerun", "--secret-file", secret)["s03"]
    assert "rerun-input-missing" in {f["code"] for f in s03["flags"]}
    assert s03["computed_score"] == 0.0 and s03["status"] == "review"


def test_a_jittered_copy_of_a_whole_kvm_api_run_is_held_for_review(
    runs_root: Path, kvm_ok: None, tmp_path: Path, cli: Any
) -> None:
    """The issue's near-copy: another student's hand-in, one comment changed in the program (its
    sha256 updated), a new run id and timestamps, every sample moved by < 1 % and the summaries
    recomputed. Caught by the gaps between its times (`same-spacing`); its samples, mostly timings that
    vary by under 1 %, cannot always tell a nudge of 0.8 % from a re-run."""
    import datetime as dt
    import hashlib

    from vmlab.report.stats import summarize

    progs = tmp_path / "src"
    progs.mkdir()
    hand = tmp_path / "hand-ins"
    for s in ("una", "val"):  # two honest students of the same machine
        prog = progs / f"{s}.asm"
        prog.write_text((DATA / "kvm-api" / "line_hypercall.asm").read_text() + f"; by {s}\n")
        copy_hand_in(run("kvm-api", runs_root / "whole" / s, s, inputs={"program": prog}), hand / s)
    shutil.copytree(hand / "una", hand / "wes")
    program = next((hand / "wes" / "artifacts" / "inputs" / "program").iterdir())
    program.write_text(program.read_text().replace("; by una", "; by wes, all my own work"))

    def forge(d: dict[str, Any]) -> None:
        d["inputs"]["program"].update(
            sha256=hashlib.sha256(program.read_bytes()).hexdigest(), size=program.stat().st_size
        )
        d["run_id"], d["run"]["student"] = "wes-run", "wes"
        shift = dt.timedelta(minutes=41, microseconds=7)

        def later(t: str | None) -> str | None:
            return None if t is None else (dt.datetime.fromisoformat(t) + shift).isoformat()

        d["created_at"], d["run"]["finished_at"] = later(d["created_at"]), later(d["run"]["finished_at"])
        for step in d["steps"].values():
            step["started_at"] = later(step["started_at"])
        for entry in d["experiments"].values():
            for exp in entry.values() if "unit" not in entry else [entry]:
                for m in [exp, *exp.get("stages", {}).values()]:
                    if len(m.get("samples", [])) >= 2:
                        m["samples"] = [x * (1.008 if i % 2 else 0.993) for i, x in enumerate(m["samples"])]
                        m["summary"] = summarize(m["samples"]).model_dump()
        d.pop("checks", None), d.pop("grade", None)

    edit(hand / "wes" / "report.json", forge)
    res = cli("grade", hand, "-o", tmp_path / "out", "--lab", "kvm-api", "--timing", "advisory", "--json")
    assert res.exit_code == 0, res.output
    got = {s["handin"]: s for s in json.loads((tmp_path / "out" / "class.json").read_text())["students"]}
    wes = {f["code"]: f["message"] for f in got["wes"]["flags"]}
    # Most kvm-api timings vary by under 1 %, as little as the nudge: the samples may or may not tell
    # (docs/grading.md, Near-copies). The gaps between the run's times, kept to the microsecond, do.
    assert wes["same-spacing"] == "run and steps spaced to the microsecond as in una", wes
    assert "near-copy" not in wes or wes["near-copy"].startswith("samples nearly the same as una's"), wes
    assert got["wes"]["status"] == "review" and got["wes"]["score"] is None
    assert got["val"]["flags"] == [] and got["val"]["status"] == "graded"
