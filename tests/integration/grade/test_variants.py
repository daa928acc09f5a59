"""Per-student variants on a real lab: kvm-api's exit counts differ between two students by their
variants, and a copied measurement report is flagged `variant-mismatch` (issue: the student's own work).

The `out` guest runs n `out dx, al` in a loop and halts: n KVM_EXIT_IO and one KVM_EXIT_HLT (the
program's listing in vmlab.kvmapi.programs). n is the student's `loop_n`, which this test derives
with the documented formula, independently of vmlab: the first 8 bytes of sha256 over
"vmlab variant\\0kvm-api\\0TERM\\0STUDENT\\0loop_n" pick 800 + k mod 401.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.integration.grade.conftest import copy_hand_in, edit, run

pytestmark = pytest.mark.kvm
TERM = "2027-spring"  # labs/kvm-api/lab.toml [variants] term


def loop_n(student: str) -> int:
    msg = f"vmlab variant\0kvm-api\0{TERM}\0{student}\0loop_n".encode()
    return 800 + int.from_bytes(hashlib.sha256(msg).digest()[:8]) % 401


@pytest.fixture
def two_students(runs_root: Path, kvm_ok: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.delenv("VMLAB_TERM", raising=False)
    assert loop_n("ann") != loop_n("ben"), "the test needs two students whose variants differ"
    sets = {"programs": {"programs": ["out", "hello"], "repeats": 1}}
    return {
        s: run("kvm-api", runs_root / "variants" / s, s, tasks=["traps"], sets=sets) for s in ("ann", "ben")
    }


def test_two_students_exits_differ_by_their_variants(two_students: dict[str, Path]) -> None:
    from vmlab.check.grader import grade_report
    from vmlab.labs.catalog import load_lab
    from vmlab.report.io import load_report

    for student, report in two_students.items():
        data = json.loads(report.read_text())
        assert data["run"]["variant"]["values"]["loop_n"] == loop_n(student)
        out = data["experiments"]["programs"]["out"]["counts"]
        assert out["IO"] == loop_n(student)  # one exit per OUT
        assert out["HLT"] == 1
        results, _ = grade_report(load_report(report), load_lab("kvm-api"), report_dir=report.parent)
        checks = {r.id: r.outcome for r in results}
        assert checks["out-io"] == "pass" and checks["variant"] == "pass"


def test_a_copied_measurement_report_is_flagged(
    two_students: dict[str, Path], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    hand = tmp_path / "hand-ins"
    copy_hand_in(two_students["ann"], hand / "ann")
    copy_hand_in(two_students["ben"], hand / "ben")
    copy_hand_in(two_students["ann"], hand / "cid")  # cid hands in ann's run under his own name
    edit(hand / "cid" / "report.json", lambda d: d["run"].update(student="cid"))
    res = cli("grade", hand, "-o", tmp_path / "out", "--lab", "kvm-api", "--task", "traps", "--json")
    assert res.exit_code == 0, res.output
    rows = {s["handin"]: s for s in json.loads(res.stdout)["students"]}
    assert "variant-mismatch" not in rows["ann"]["flags"] and "variant-mismatch" not in rows["ben"]["flags"]
    assert "variant-mismatch" in rows["cid"]["flags"]
    assert rows["cid"]["status"] == "review" and rows["cid"]["score"] is None
    full = {s["handin"]: s for s in json.loads((tmp_path / "out" / "class.json").read_text())["students"]}
    (flag,) = [f for f in full["cid"]["flags"] if f["code"] == "variant-mismatch"]
    assert f"loop_n is {loop_n('ann')}, expected {loop_n('cid')}" in flag["message"]
