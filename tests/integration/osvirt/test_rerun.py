"""`vmlab grade --rerun` for os-virt: the hand-in's box.py on hidden probes, in a jail on the runner.

One honest run of the model (tasks t1-t7) is the report every hand-in starts from; the weak hand-ins
keep that report (so it claims every task) and swap box.py for a weaker one, with the sha256 and size
the report lists updated as a forger would. What each weak box lacks is written down from the model's
source, so which hidden check must fail is known before the run:

- no network namespace: the probe shell sees the jail's veth pair -> `hidden-net` (t4);
- a filter that always denies mkdir, whatever --deny-syscall says -> `hidden-seccomp` (t6);
- the old root left mounted after pivot_root: the hidden file is reachable, the host's mounts are in
  its table -> `hidden-file`, `hidden-mounts` (t2);
- a liar that runs nothing and prints the public probes' answers -> no probe shell for the host to
  look at: every hidden check fails.

A runner without the tiny image is the runner's fault: one `error` check, flag `rerun-error`, held.
After every grading: no jail user, cgroup directory, temp folder or process of the jail is left.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.integration.osvirt.conftest import SOLUTION

pytestmark = pytest.mark.slow

TASKS = ["t1-pid-uts", "t2-mount", "t3-user", "t4-net", "t5-cgroups", "t6-seccomp", "t7-caps"]
MODEL = SOLUTION.read_text()


def _weak(old: str, new: str) -> str:
    assert old in MODEL, old  # the model still has the line this weak box removes
    return MODEL.replace(old, new)


NO_NETNS = _weak("| CLONE_NEWNET | CLONE_NEWIPC)", "| CLONE_NEWIPC)").replace(
    '    loopback_up()\n    times["net"]', '    times["net"]'
)
FIXED_SECCOMP = _weak("seccomp_deny(args.deny_syscall)", 'seccomp_deny(["mkdir", "mkdirat"])')
OLD_ROOT_KEPT = _weak(
    '    _check(libc.umount2(b"/.oldroot", MNT_DETACH), "umount old root")\n    os.rmdir("/.oldroot")\n', ""
)
LIAR = """import sys
print("pid=1\\npids=1\\nhostname=box-100\\nmounts=2\\nhost_file=unreachable\\nrootfs=tiny\\nnetifs=lo,")
print("cap_eff=00000000a80425fb\\nseccomp=2\\nuid=0\\nuid_map=0 1000 1\\npriv=denied")
print("mkdir=Operation not permitted\\nalloc_status=137\\nstarted=20\\nready")
sys.exit(0)
"""


@pytest.fixture(scope="module")
def honest(rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model's run of t1-t7 (its variant from student id s1), as a hand-in folder's report."""
    from vmlab.labs.pipeline import RunRequest, run_lab

    report = tmp_path_factory.mktemp("osvirt-honest") / "report.json"
    run_lab(
        RunRequest(
            lab="os-virt",
            student="s1",
            output=report,
            tasks=TASKS,
            inputs={"box": SOLUTION},
            sets={"isolation": {"compare": []}},
        )
    )
    return report


@pytest.fixture(scope="module")
def grade(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from typer.testing import CliRunner

    from vmlab.cli.main import app
    from vmlab.grade.sign import write_key

    key = write_key(tmp_path_factory.mktemp("osvirt-key") / "tutor.key")

    def run(hand_ins: list[Path], out: Path) -> dict[str, Any]:
        args = ["grade", *map(str, hand_ins), "-o", str(out), "--lab", "os-virt", "--rerun"]
        res = CliRunner().invoke(app, [*args, "--secret-file", str(key), "--json"], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        _assert_nothing_left()
        cls = json.loads((out / "class.json").read_text())
        return {s["student"]: s for s in cls["students"]}

    return run


def _assert_nothing_left() -> None:
    from vmlab.osvirt.box import leftovers as box_leftovers
    from vmlab.osvirt.jail import JAIL_PREFIX, leftovers

    assert leftovers() == {"users": [], "cgroups": [], "temp": []}
    assert box_leftovers(JAIL_PREFIX) == []
    jail_uids = {p.pw_uid for p in pwd.getpwall() if p.pw_name.startswith(JAIL_PREFIX)}
    assert jail_uids == set()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert JAIL_PREFIX not in mounts


def _hand_in(honest: Path, dest: Path, box_text: str | None = None) -> Path:
    """A copy of the honest hand-in, with box.py swapped (and the report's sha256 and size updated)."""
    dest.mkdir(parents=True)
    shutil.copy(honest, dest / "report.json")
    shutil.copytree(honest.parent / "artifacts", dest / "artifacts")
    if box_text is not None:
        data = json.loads((dest / "report.json").read_text())
        rec = data["inputs"]["box"]
        (dest / rec["artifact"]).write_text(box_text)
        rec["sha256"] = hashlib.sha256(box_text.encode()).hexdigest()
        rec["size"] = len(box_text.encode())
        (dest / "report.json").write_text(json.dumps(data, indent=2))
    return dest


def _rerun(student: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in student["checks"] if c["kind"].startswith("rerun")}


def test_honest_box_passes_the_hidden_probes(honest: Path, grade: Any, tmp_path: Path) -> None:
    got = grade([_hand_in(honest, tmp_path / "in" / "s1")], tmp_path / "out")["s1"]
    checks = _rerun(got)
    assert {c["task"] for c in checks.values()} == set(TASKS)
    assert all(c["outcome"] == "pass" and c["kind"] == "rerun-claim" for c in checks.values()), checks
    assert got["status"] == "graded" and got["flags"] == []
    # the hidden hostname is drawn from 1000..9999, never the variant's 100..999 the report shows
    hostname = checks["rerun:hidden-hostname"]["measured"].split("'")[1]
    assert 1000 <= int(hostname.removeprefix("box-")) <= 9999
    report = json.loads((tmp_path / "in" / "s1" / "report.json").read_text())
    assert hostname != report["experiments"]["isolation"]["box"]["values"]["hostname"]


def test_claims_the_box_does_not_keep_are_caught(honest: Path, grade: Any, tmp_path: Path) -> None:
    weak = {"nonet": NO_NETNS, "fixedsc": FIXED_SECCOMP, "oldroot": OLD_ROOT_KEPT, "liar": LIAR}
    got = grade([_hand_in(honest, tmp_path / "in" / s, text) for s, text in weak.items()], tmp_path / "out")
    failed = {s: {k for k, c in _rerun(got[s]).items() if c["outcome"] == "fail"} for s in weak}
    assert failed["nonet"] == {"rerun:hidden-net"}
    assert failed["fixedsc"] == {"rerun:hidden-seccomp"}
    assert failed["oldroot"] == {"rerun:hidden-file", "rerun:hidden-mounts"}
    # no probe shell for the host to look at: its printed answers are worth nothing, every check fails
    assert failed["liar"] == set(_rerun(got["liar"])) and len(failed["liar"]) == 14
    for s in weak:
        assert "rerun-mismatch" in {f["code"] for f in got[s]["flags"]}, got[s]["flags"]
        assert got[s]["computed_score"] == 0 and got[s]["status"] == "review"


def test_a_runner_fault_is_held_for_review(
    honest: Path, grade: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VMLAB_HOME", str(tmp_path / "empty-home"))  # this runner has no tiny image
    got = grade([_hand_in(honest, tmp_path / "in" / "s1")], tmp_path / "out")["s1"]
    checks = _rerun(got)
    assert [c["outcome"] for c in checks.values()] == ["error"], checks
    assert "tiny" in checks["rerun:jail"]["message"]
    assert "rerun-error" in {f["code"] for f in got["flags"]} and got["status"] == "review"
    assert got["computed_score"] > 0  # nothing taken away: the fault is the runner's


def test_a_hanging_box_is_killed_and_nothing_is_left(honest: Path, tmp_path: Path) -> None:
    """A box that forks a sleeper into its own session and never exits: the jail ends on the deadline
    (box_timeout_s + 15 s, here 1 + 15), and every process of the jail's user dies with it."""
    from vmlab.grade.handins import HandIn
    from vmlab.grade.rerun import rerun_checks
    from vmlab.labs.catalog import load_lab
    from vmlab.report.io import load_report

    hanging = "import os, time\nif os.fork() == 0:\n    os.setsid()\nwhile True:\n    time.sleep(1)\n"
    dest = _hand_in(honest, tmp_path / "in" / "s1", hanging)
    lab = load_lab("os-virt")
    assert lab.rerun is not None
    spec = lab.rerun.model_copy(update={"params": {**lab.rerun.params, "box_timeout_s": 1.0}})
    lab = lab.model_copy(update={"rerun": spec})
    report = load_report(dest / "report.json")
    h = HandIn(path=dest / "report.json", name_id="s1", shown="s1", student="s1")
    checks = rerun_checks(h, report, lab, os.urandom(32))
    assert checks and all(c.outcome == "fail" for c in checks), [(c.id, c.outcome, c.message) for c in checks]
    _assert_nothing_left()
