"""The os-virt lab as a normal user: the model box takes the user-namespace path (root inside, the
student's uid outside) and passes every isolation task; the cgroup task, which needs root on cgroup
v1, is recorded as skipped with the fix instead of aborting the run.

Expected values are the task sheet's: uid_map `0 <uid> 1` (the box maps root to the student's uid).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from tests.helpers import failed_verdicts
from tests.integration.nonroot.conftest import Student

pytestmark = pytest.mark.slow
TASKS = ["t1-pid-uts", "t2-mount", "t3-user", "t4-net", "t6-seccomp", "t7-caps"]


def _give_image(student: Student) -> None:
    """The tiny image in the student's own cache (what `vmlab image build tiny` would leave there)."""
    from tests.conftest import unavailable

    from vmlab.errors import VmlabError
    from vmlab.images.cache import get_image

    try:
        info = get_image("tiny", verify="quick")
    except VmlabError as e:
        unavailable("the tiny image", str(e))
    dest = student.vmlab_home / "images" / "tiny" / info.digest
    if not dest.is_dir():
        shutil.copytree(info.path, dest)
        owner = f"{student.uid}:{student.uid}"
        subprocess.run(["chown", "-R", owner, str(student.home / ".cache")], check=True)


def test_model_box_as_a_normal_user(student: Student) -> None:
    _give_image(student)
    report = student.home / "osvirt" / "report.json"
    box = student.home / "kit" / "labs" / "os-virt" / "solution" / "box.py"
    args = ["lab", "run", "os-virt", "--student", "s1", "-o", str(report), "--input", f"box={box}"]
    for t in [*TASKS, "t5-cgroups"]:
        args += ["--task", t]
    p = student.vmlab(*args, "--set", "isolation.compare=[]", timeout=240)
    assert p.returncode == 3, p.stderr[-2000:]  # one step skipped: limits needs root here
    data = json.loads(report.read_text())
    assert data["steps"]["limits"]["status"] == "skipped"
    assert "root" in data["steps"]["limits"]["message"]
    assert data["steps"]["isolation"]["status"] == "ok", data["steps"]["isolation"]
    box_exp = data["experiments"]["isolation"]["box"]
    assert box_exp["values"]["uid_map"] == f"0 {student.uid} 1"
    c = student.vmlab("check", str(report), "--json", timeout=120)
    verdict = json.loads(c.stdout)
    checks = [x for x in verdict["checks"] if x.get("task") in TASKS and x["kind"] != "question"]
    assert checks and failed_verdicts(checks) == []


def test_rootless_runc_row_as_a_normal_user(student: Student) -> None:
    """t8 as a normal user: `runc run` with a rootless spec (a user namespace mapping root to the
    student) is the row `runc-rootless`; where it cannot run, the box row's notes say why."""
    _give_image(student)
    report = student.home / "osvirt-cost" / "report.json"
    box = student.home / "kit" / "labs" / "os-virt" / "solution" / "box.py"
    args = ["lab", "run", "os-virt", "--student", "s1", "-o", str(report), "--input", f"box={box}"]
    sets = ["cost.repeats=2", "cost.ns_repeats=3", 'cost.compare=["runc"]']
    p = student.vmlab(*args, "--task", "t8-cost", *[x for s in sets for x in ("--set", s)], timeout=300)
    assert report.is_file(), p.stderr[-2000:]
    cost = json.loads(report.read_text())["experiments"]["cost"]
    assert "runc" not in cost  # the root row needs root
    # independent of the lab: can this student make a user namespace at all (util-linux unshare)?
    userns = student.run(["unshare", "--user", "--map-root-user", "true"]).returncode == 0
    sbin = "/usr/local/sbin:/usr/sbin:/sbin:" + os.environ.get("PATH", "")
    if shutil.which("runc", path=sbin) is not None and userns:
        assert len(cost["runc-rootless"]["samples"]) == 2
    else:
        assert "runc-rootless" not in cost
        assert any(n.startswith("runc-rootless: ") for n in cost["box"]["provenance"]["notes"])
