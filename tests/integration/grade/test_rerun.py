"""`vmlab grade --rerun`: submitted code runs again, in a real container, on hidden inputs.

The oracle of a hidden isa program is the reference interpreter; the kvm-api oracle is the hidden line
itself. An engine that only knows the public answers passes its own report and fails the re-run.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.integration.grade.conftest import copy_hand_in

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vmlab.grade.sign import write_key

    return write_key(tmp_path_factory.mktemp("secret") / "tutor.key")


def _containers() -> set[str]:
    p = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=vmlab.purpose=rerun"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(p.stdout.split())


def _grade(cli: Any, hand_ins: list[Path], out: Path, lab: str, secret: Path) -> dict[str, Any]:
    before = _containers()
    res = cli("grade", *hand_ins, "-o", out, "--lab", lab, "--rerun", "--secret-file", secret, "--json")
    assert res.exit_code == 0, res.output
    assert _containers() == before  # every container removed
    cls = json.loads((out / "class.json").read_text())
    return {s["student"]: s for s in cls["students"]}


def test_isa_rerun_passes_a_real_engine_and_fails_public_constants(
    docker_ok: None, isa_runs: dict[str, Path], tmp_path: Path, cli: Any, secret: Path
) -> None:
    hand = [copy_hand_in(isa_runs[s], tmp_path / "in" / s) for s in ("ivy", "mallory")]
    got = _grade(cli, hand, tmp_path / "out", "isa-emulation", secret)
    ivy = {c["id"]: c for c in got["ivy"]["checks"] if c["kind"].startswith("rerun")}
    assert {"rerun:hidden-1[t1]", "rerun:hidden-2[t1]", "rerun:claims[t1]", "rerun:speed[t1]"} <= set(ivy)
    passing = ("rerun:hidden-1[t1]", "rerun:hidden-2[t1]", "rerun:claims[t1]")
    assert all(ivy[k]["outcome"] == "pass" for k in passing)
    assert ivy["rerun:speed[t1]"]["required"] is False and ivy["rerun:speed[t1]"]["timing"] is True
    assert ivy["rerun:hidden-1[t1]"]["task"] == "t1-interpret"
    assert got["ivy"]["status"] == "graded"
    mallory = got["mallory"]
    own = {c["id"]: c["outcome"] for c in mallory["checks"]}
    assert own["oracle-S1[t1]"] == "pass"  # the report alone looks right
    assert own["rerun:hidden-1[t1]"] == "fail" and own["rerun:hidden-2[t1]"] == "fail"
    assert "rerun-mismatch" in {f["code"] for f in mallory["flags"]} and mallory["computed_score"] == 0
    assert mallory["status"] == "review" and mallory["score"] is None  # held until the tutor decides


@pytest.mark.kvm
def test_kvm_rerun_passes_a_real_guest(
    docker_ok: None, kvm_ok: None, kvm_runs: list[Path], tmp_path: Path, cli: Any, secret: Path
) -> None:
    hand = [copy_hand_in(kvm_runs[2], tmp_path / "in" / "s03")]
    got = _grade(cli, hand, tmp_path / "out", "kvm-api", secret)["s03"]
    checks = {c["id"]: c for c in got["checks"] if c["kind"].startswith("rerun")}
    assert checks["rerun:hidden-line"]["outcome"] == "pass"
    assert checks["rerun:exit-budget"]["outcome"] == "pass" and checks["rerun:exit-budget"]["measured"] == 2
    assert got["status"] == "graded" and got["score"] == 4


def test_hidden_inputs_never_reach_the_outputs(
    docker_ok: None, isa_runs: dict[str, Path], tmp_path: Path, cli: Any, secret: Path
) -> None:
    from vmlab.grade.rerun import derive
    from vmlab.grade.sign import read_key

    hand = [copy_hand_in(isa_runs["ivy"], tmp_path / "in" / "ivy")]
    out = tmp_path / "out"
    _grade(cli, hand, out, "isa-emulation", secret)
    key = read_key(secret).decode()
    hidden = derive(read_key(secret), "isa-emulation", "ivy", "program-1-0", 16).hex()
    for f in out.rglob("*"):
        if f.is_file():
            text = f.read_text()
            assert key not in text and hidden not in text


def _rerun_checks(student: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in student["checks"] if c["kind"].startswith("rerun")}


def _computed_score(student: dict[str, Any]) -> Any:
    """The score the checks give, before a flag holds the published one back for review."""
    return student.get("computed_score", student["score"])


def test_isa_rerun_refuses_vmlab_reference_code(
    docker_ok: None, cheat_runs: dict[str, Path], tmp_path: Path, cli: Any, secret: Path
) -> None:
    """Each engine below works on the student's machine (its report passes every public oracle) because
    it runs vmlab's own code; the re-run image holds none of it and refuses the import."""
    hand = [copy_hand_in(cheat_runs[s], tmp_path / "in" / s) for s in cheat_runs]
    got = _grade(cli, hand, tmp_path / "out", "isa-emulation", secret)
    for student in cheat_runs:
        own = {c["id"]: c["outcome"] for c in got[student]["checks"]}
        assert own["oracle-S1[t1]"] == "pass", student  # the report alone looks right
    # the module each engine was written to import (conftest.CHEATS), in the message the brief specifies
    imported = {
        "trudy": ("vmlab.isa.engines.switch", "one of vmlab's reference engines"),
        "ursula": ("vmlab.isa.engines.switch", "one of vmlab's reference engines"),
        "victor": ("vmlab.isa.reference", "vmlab's reference interpreter, the hidden checks' oracle"),
    }
    for student, (module, what) in imported.items():
        checks = _rerun_checks(got[student])
        use = checks["rerun:uses-reference[t1]"]
        assert use["outcome"] == "fail" and use["kind"] == "rerun-claim" and use["required"] is True, student
        assert use["message"] == f"t1 imports {module}, {what}: the re-run grades your own code"
        assert use["measured"] == module and use["task"] == "t1-interpret"
        assert checks["rerun:hidden-1[t1]"]["outcome"] == "fail"
        assert checks["rerun:hidden-2[t1]"]["outcome"] == "fail"
        assert checks["rerun:speed[t1]"]["outcome"] == "skipped"  # no baseline for refused code
        codes = {f["code"] for f in got[student]["flags"]}
        assert "uses-reference" in codes, (student, codes)
        assert _computed_score(got[student]) == 0
    # walter imports nothing vmlab refuses: he opens switch.py by path, and the image has no such file
    walter = _rerun_checks(got["walter"])
    assert walter["rerun:uses-reference[t1]"]["outcome"] == "pass"
    for k in (1, 2):
        hidden = walter[f"rerun:hidden-{k}[t1]"]
        assert hidden["outcome"] == "fail" and hidden["kind"] == "rerun-claim"
        assert "FileNotFoundError" in hidden["message"] and "engines/switch.py" in hidden["message"]
    assert walter["rerun:speed[t1]"]["outcome"] == "skipped"  # not an infrastructure error
    assert "rerun-error" not in {f["code"] for f in got["walter"]["flags"]}
    assert _computed_score(got["walter"]) == 0


def test_isa_rerun_times_an_honest_engine_against_the_baseline(
    docker_ok: None, isa_runs: dict[str, Path], tmp_path: Path, cli: Any, secret: Path
) -> None:
    """The speed check still gets timings: from the second container, which alone holds the baseline."""
    hand = [copy_hand_in(isa_runs["ivy"], tmp_path / "in" / "ivy")]
    ivy = _rerun_checks(_grade(cli, hand, tmp_path / "out", "isa-emulation", secret)["ivy"])
    use = ivy["rerun:uses-reference[t1]"]
    assert use["outcome"] == "pass" and use["kind"] == "rerun-claim" and use["measured"] == "none"
    speed = ivy["rerun:speed[t1]"]
    assert speed["outcome"] in ("pass", "fail"), speed  # measured, whatever the runner's load
    assert isinstance(speed["measured"], float) and speed["measured"] > 0
