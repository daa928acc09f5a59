"""isa-emulation's per-student program SV: two students' engines run different programs, each checked
against the reference interpreter.

The seed is the student's variant, derived here with the documented formula (docs/lab-contract.md,
Variants), independently of vmlab: choices[first 8 bytes of sha256("vmlab variant\\0isa-emulation\\0
TERM\\0STUDENT\\0seed") mod 32].
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import pytest

from vmlab.isa.gen import generate
from vmlab.isa.reference import run_reference
from vmlab.labs.pipeline import RunRequest, run_lab

LAB = Path(__file__).parents[3] / "labs" / "isa-emulation"


def seed_of(student: str) -> int:
    spec = tomllib.loads((LAB / "lab.toml").read_text())["variants"]
    choices = spec["params"]["seed"]["choices"]
    msg = f"vmlab variant\0isa-emulation\0{spec['term']}\0{student}\0seed".encode()
    return int(choices[int.from_bytes(hashlib.sha256(msg).digest()[:8]) % len(choices)])


def test_each_student_runs_their_own_program_against_the_oracle(
    tmp_path: Path, vmlab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vmlab.check.grader import grade_report
    from vmlab.labs.catalog import load_lab
    from vmlab.report.io import load_report

    monkeypatch.delenv("VMLAB_TERM", raising=False)
    assert seed_of("ann") != seed_of("ben"), "the test needs two students whose seeds differ"
    solution = LAB / "solution" / "t1_interpret.py"
    outcomes = {}
    for student in ("ann", "ben"):
        out = tmp_path / student / "report.json"
        sets = {"t1": {"scenarios": [1]}}
        run_lab(
            RunRequest(
                lab="isa-emulation",
                student=student,
                output=out,
                steps=["t1"],
                sets=sets,
                inputs={"t1": solution},
            )
        )
        report = load_report(out)
        sv = report.experiments["t1"]["SV"]  # type: ignore[index]
        # the homework generator at size 4000 with S3's mix, run by the reference interpreter
        want = run_reference(generate(4000, seed_of(student), (1, 9, 1, 5, 5)))
        assert (sv.counts["A"], sv.counts["instructions"]) == (want.a, want.executed)
        assert 100_000 <= want.executed <= 300_000  # the pool's vetted range
        results, _ = grade_report(report, load_lab("isa-emulation"), report_dir=out.parent)
        by_id = {r.id: r for r in results}
        assert by_id["oracle-SV[t1]"].outcome == "pass" and by_id["variant"].outcome == "pass"
        outcomes[student] = sv.values["outcome"]
    assert outcomes["ann"] != outcomes["ben"]
