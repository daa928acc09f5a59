"""`vmlab grade --rerun` for the measurement labs: the lab's own steps run again on this runner.

For warmup, system-vm (guests under TCG here), hll-vm and process-vm: an honest hand-in, made by a
real run with small parameters, passes its re-run; a doctored one (one figure edited, the figures
computed from it edited to agree, so the report still passes integrity) fails it with `rerun-mismatch`;
a fault of the runner (a requirement this host no longer meets) is `rerun-error`, held for review.
Timing is never asserted: only which checks exist and that timings are never required.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import unavailable
from tests.integration.grade.conftest import copy_hand_in, edit, run

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vmlab.grade.sign import write_key

    return write_key(tmp_path_factory.mktemp("secret") / "tutor.key")


def _grade(cli: Any, report: Path, out: Path, lab: str, secret: Path, name: str) -> dict[str, Any]:
    """One hand-in (folder `name`, the report's student too), graded with --rerun; its verdict."""
    hand = out / "hand-ins" / name
    copy_hand_in(report, hand)
    res = cli(
        "grade",
        hand.parent,
        "-o",
        out / "out",
        "--lab",
        lab,
        "--rerun",
        "--secret-file",
        secret,
        "--near-copies",
        "none",
        "--json",
    )
    assert res.exit_code == 0, res.output
    (student,) = json.loads((out / "out" / "class.json").read_text())["students"]
    return dict(student)


def _reruns(student: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in student["checks"] if c["kind"].startswith("rerun")}


def _flags(student: dict[str, Any]) -> set[str]:
    return {f["code"] for f in student["flags"]}


def _honest(student: dict[str, Any], exact: set[str]) -> None:
    checks = _reruns(student)
    assert exact <= set(checks), checks.keys()
    for cid in exact:
        assert checks[cid]["kind"] == "rerun-claim" and checks[cid]["outcome"] == "pass", checks[cid]
    for c in checks.values():
        assert c["outcome"] in ("pass", "skipped") or c["timing"], c
        assert not c["timing"] or not c["required"]  # timings are reported, never required
    assert _flags(student) == set() and student["status"] == "graded"


def _mismatch(student: dict[str, Any], check_id: str, text: str) -> None:
    check = _reruns(student)[check_id]
    assert check["outcome"] == "fail" and text in check["message"], check
    assert "rerun-mismatch" in _flags(student)
    assert student["computed_score"] == 0 and student["status"] == "review"


def _runner_fault(student: dict[str, Any], text: str) -> None:
    errors = [c for c in student["checks"] if c["kind"] == "rerun" and c["outcome"] == "error"]
    assert errors and any(text in c["message"] for c in errors), student["checks"]
    assert "rerun-error" in _flags(student) and "rerun-mismatch" not in _flags(student)
    assert student["status"] == "review" and student["computed_score"] > 0  # not the student's loss


def _no_program(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This runner's PATH loses every program (an empty folder): the lab's tools are not found."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


# ---- warmup ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def warmup_report(runs_root: Path) -> Path:
    sets = {"true": {"runs": 5}, "python": {"runs": 5}, "uname": {"runs": 2}}
    return run("warmup", runs_root / "rm-warmup", "wes", sets=sets)


def test_warmup_honest_rerun_passes_with_timings_against_the_calibration(
    warmup_report: Path, tmp_path: Path, cli: Any, secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VMLAB_HOME", str(tmp_path / "home"))
    res = cli("grade", "calibrate", "--lab", "warmup", "--runs", "3", "--json")
    assert res.exit_code == 0, res.output
    cal = json.loads((tmp_path / "home" / "calibration" / "warmup.json").read_text())
    assert set(cal["medians"]) == {"true", "python", "uname"} and cal["params"]["true"]["runs"] == 3
    got = _grade(cli, warmup_report, tmp_path, "warmup", secret, "wes")
    _honest(got, {"rerun:exact[true]", "rerun:exact[python]", "rerun:exact[uname]"})
    timings = {k: c for k, c in _reruns(got).items() if c["timing"]}
    # the hand-in ran 5 starts, the calibration 3: runs say how often, not what, so both compare
    assert set(timings) == {"rerun:timing[true]", "rerun:timing[python]", "rerun:timing[uname]"}
    assert all(c["outcome"] in ("pass", "fail") and c["required"] is False for c in timings.values())
    assert "of the runner's baseline" in timings["rerun:timing[true]"]["measured"]


def test_warmup_without_calibration_skips_timings_with_one_line(
    warmup_report: Path, tmp_path: Path, cli: Any, secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VMLAB_HOME", str(tmp_path / "home"))
    got = _grade(cli, warmup_report, tmp_path, "warmup", secret, "wes")
    timing = _reruns(got)["rerun:timing"]
    assert timing["outcome"] == "skipped" and "vmlab grade calibrate --lab warmup" in timing["message"]
    assert got["status"] == "graded"


def test_warmup_doctored_output_fails_the_rerun(
    warmup_report: Path, tmp_path: Path, cli: Any, secret: Path
) -> None:
    doctored = tmp_path / "src" / "report.json"
    copy_hand_in(warmup_report, doctored.parent)

    def forge(d: dict[str, Any]) -> None:  # still matches the lab's ^Linux; uname never prints it
        d["experiments"]["uname"]["text"] = "Linux, on my own kernel\n"
        d.pop("checks", None), d.pop("grade", None)

    edit(doctored, forge)
    got = _grade(cli, doctored, tmp_path, "warmup", secret, "wes")
    assert {c["id"]: c["outcome"] for c in got["checks"]}["kernel-name"] == "pass"  # the report looks right
    _mismatch(got, "rerun:exact[uname]", "uname.text")


def test_warmup_runner_without_its_programs_holds_for_review(
    warmup_report: Path, tmp_path: Path, cli: Any, secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_program(monkeypatch, tmp_path)  # uname is no longer found on this runner
    got = _grade(cli, warmup_report, tmp_path, "warmup", secret, "wes")
    _runner_fault(got, "on this runner")


# ---- process-vm -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def procvm_report(runs_root: Path) -> Path:
    from shutil import which

    for tool in ("valgrind", "gcc"):
        if which(tool) is None:
            unavailable(tool, "is not installed")
    # loop_iterations is pia's variant (800,000 to 1,200,000): a few seconds under lackey
    sets = {"counts": {"workloads": ["loop", "true"], "extra": False}}
    return run("process-vm", runs_root / "rm-procvm", "pia", tasks=["t1-translate"], sets=sets)


def test_procvm_honest_rerun_passes(procvm_report: Path, tmp_path: Path, cli: Any, secret: Path) -> None:
    got = _grade(cli, procvm_report, tmp_path, "process-vm", secret, "pia")
    _honest(got, {"rerun:exact[counts]"})
    # loop and true, 4 counts each (guest_instrs, sbs_entered, sbs_completed, translations)
    assert _reruns(got)["rerun:exact[counts]"]["measured"] == "8 of 8 agree"


def test_procvm_doctored_instruction_count_fails_the_rerun(
    procvm_report: Path, tmp_path: Path, cli: Any, secret: Path
) -> None:
    doctored = tmp_path / "src" / "report.json"
    copy_hand_in(procvm_report, doctored.parent)

    def forge(d: dict[str, Any]) -> None:
        loop = d["experiments"]["counts"]["loop"]
        # 14 % more: far beyond the few hundred instructions the environment moves (rel_tol 5 %)
        loop["counts"]["guest_instrs"] = round(loop["counts"]["guest_instrs"] * 1.14)
        loop["values"]["instrs_per_sb"] = round(
            loop["counts"]["guest_instrs"] / loop["counts"]["sbs_entered"], 4
        )
        d.pop("checks", None), d.pop("grade", None)

    edit(doctored, forge)
    got = _grade(cli, doctored, tmp_path, "process-vm", secret, "pia")
    _mismatch(got, "rerun:exact[counts]", "counts.loop.counts.guest_instrs")


def test_procvm_runner_without_valgrind_holds_for_review(
    procvm_report: Path, tmp_path: Path, cli: Any, secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_program(monkeypatch, tmp_path)
    got = _grade(cli, procvm_report, tmp_path, "process-vm", secret, "pia")
    _runner_fault(got, "valgrind is not installed")


# ---- hll-vm ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hllvm_report(runs_root: Path) -> Path:
    from shutil import which

    for tool in ("java", "jasmin"):
        if which(tool) is None:
            unavailable(tool, "is not installed")
    return run("hll-vm", runs_root / "rm-hllvm", "hal", tasks=["verifier"])


@pytest.mark.java
def test_hllvm_honest_rerun_passes(hllvm_report: Path, tmp_path: Path, cli: Any, secret: Path) -> None:
    got = _grade(cli, hllvm_report, tmp_path, "hll-vm", secret, "hal")
    _honest(got, {"rerun:exact[verifier]", "rerun:exact[jasmin]"})


@pytest.mark.java
def test_hllvm_doctored_verdict_fails_the_rerun(
    hllvm_report: Path, tmp_path: Path, cli: Any, secret: Path
) -> None:
    doctored = tmp_path / "src" / "report.json"
    copy_hand_in(hllvm_report, doctored.parent)

    def forge(d: dict[str, Any]) -> None:  # the hand-made class with a bad branch "passes" the verifier
        bad = d["experiments"]["verifier"]["BadBranch"]
        bad["values"].update(status="accepted", error="", message="", reason="")
        bad["text"] = "accepted"
        d.pop("checks", None), d.pop("grade", None)

    edit(doctored, forge)
    got = _grade(cli, doctored, tmp_path, "hll-vm", secret, "hal")
    _mismatch(got, "rerun:exact[verifier]", "verifier.BadBranch.values.status")


@pytest.mark.java
def test_hllvm_runner_without_java_holds_for_review(
    hllvm_report: Path, tmp_path: Path, cli: Any, secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_program(monkeypatch, tmp_path)
    got = _grade(cli, hllvm_report, tmp_path, "hll-vm", secret, "hal")
    _runner_fault(got, "java is not installed")


# ---- system-vm (guests under TCG here) -------------------------------------------------------------


@pytest.fixture(scope="module")
def sysvm_report(runs_root: Path, request: pytest.FixtureRequest) -> Path:
    request.getfixturevalue("docker_ok")
    request.getfixturevalue("tiny_image")
    home = request.getfixturevalue("test_home")
    # the compare step only: the one [rerun] re-measures
    return run(
        "system-vm",
        runs_root / "rm-sysvm",
        "sid",
        home=home,
        tasks=["t1-startup"],
        sets={"compare": {"runs": 1}},
    )


@pytest.mark.libvirt
@pytest.mark.docker
def test_sysvm_honest_and_doctored_reruns(sysvm_report: Path, tmp_path: Path, cli: Any, secret: Path) -> None:
    got = _grade(cli, sysvm_report, tmp_path / "honest", "system-vm", secret, "sid")
    _honest(got, {"rerun:exact[compare]"})
    doctored = tmp_path / "src" / "report.json"
    copy_hand_in(sysvm_report, doctored.parent)

    def forge(d: dict[str, Any]) -> None:  # 11 writes more in the container's I/O loop, totals to match
        c = d["experiments"]["traps"]["container"]["counts"]
        for k in ("io:write", "io:total", "headline:io", "after:total", "headline:after"):
            c[k] += 11
        d.pop("checks", None), d.pop("grade", None)

    edit(doctored, forge)
    bad = _grade(cli, doctored, tmp_path / "doctored", "system-vm", secret, "sid")
    _mismatch(bad, "rerun:exact[compare]", "traps.container.counts.io:write")


@pytest.mark.libvirt
@pytest.mark.docker
def test_sysvm_runner_without_docker_holds_for_review(
    sysvm_report: Path, tmp_path: Path, cli: Any, secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-dockerd.sock'}")
    got = _grade(cli, sysvm_report, tmp_path, "system-vm", secret, "sid")
    _runner_fault(got, "docker")


def test_no_rerun_leaves_a_run_folder_behind(
    warmup_report: Path, tmp_path: Path, cli: Any, secret: Path
) -> None:
    """The re-measurement's report and scratch are temporary: VMLAB_HOME/runs stays empty."""
    home = tmp_path / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("VMLAB_HOME", str(home))
    try:
        _grade(cli, warmup_report, tmp_path, "warmup", secret, "wes")
    finally:
        mp.undo()
    assert (home / "runs").is_dir() and list((home / "runs").iterdir()) == []


def test_warmup_recorded_parameters_the_runner_refuses_fail_the_rerun(
    warmup_report: Path, tmp_path: Path, cli: Any, secret: Path
) -> None:
    """StartupParams.runs is at least 1: a report that says it ran 0 starts was not written by vmlab."""
    doctored = tmp_path / "src" / "report.json"
    copy_hand_in(warmup_report, doctored.parent)

    def forge(d: dict[str, Any]) -> None:
        d["steps"]["uname"]["params"]["runs"] = 0
        d.pop("checks", None), d.pop("grade", None)

    edit(doctored, forge)
    got = _grade(cli, doctored, tmp_path, "warmup", secret, "wes")
    _mismatch(got, "rerun:params[uname]", "uname")
    assert _reruns(got)["rerun:exact[true]"]["outcome"] == "pass"  # the other steps still re-run


def test_warmup_a_command_line_the_hand_in_names_is_never_run(
    warmup_report: Path, tmp_path: Path, cli: Any, secret: Path
) -> None:
    """lab.toml says `uname -s`; a report that records another argv gets no re-run of it."""
    marker = tmp_path / "ran-on-the-runner"
    doctored = tmp_path / "src" / "report.json"
    copy_hand_in(warmup_report, doctored.parent)

    def forge(d: dict[str, Any]) -> None:
        d["steps"]["uname"]["params"]["argv"] = ["touch", str(marker)]
        d.pop("checks", None), d.pop("grade", None)

    edit(doctored, forge)
    got = _grade(cli, doctored, tmp_path, "warmup", secret, "wes")
    _mismatch(got, "rerun:params[uname]", "argv")
    assert not marker.exists()
