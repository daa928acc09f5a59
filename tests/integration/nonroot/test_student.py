"""The kit as a student who is not root: doctor, image build, a guest on qemu:///session and a
container through the CLI, `down --all` leaving nothing on either URI, and a one-run comparison whose
privileged parts are measured another way or recorded as skipped, never aborting the run.

The tests share one throwaway user and run in file order (the build first); the whole module costs
about a minute here (image build ~15 s, guest boot under TCG ~3 s, compare --runs 1 ~15 s).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tests.integration.nonroot.conftest import Student, parse_json, wait_gone

pytestmark = [
    pytest.mark.libvirt,
    pytest.mark.docker,
    pytest.mark.slow,
    pytest.mark.usefixtures("libvirt_available", "docker_available"),  # the daemons make setup starts
]

SESSION = "qemu:///session"


def _session_domains(student: Student) -> list[str]:
    p = student.run(["virsh", "-c", SESSION, "list", "--all", "--name"], timeout=60)
    assert p.returncode == 0, p.stderr
    return [n for n in p.stdout.split() if n.startswith("vmlab-")]


def _containers(student: Student) -> list[str]:
    p = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=vmlab.home={student.vmlab_home}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


def test_doctor_says_session_uri_groups_and_skips(student: Student) -> None:
    data = parse_json(student.vmlab("doctor", "--json", timeout=120))
    rows = {r["name"]: r for r in data["checks"]}
    assert rows["groups"]["status"] == "ok", rows["groups"]["detail"]
    assert rows["libvirt"]["status"] == "ok", rows["libvirt"]["detail"]
    assert rows["libvirt"]["data"]["uri"] == SESSION and "not root" in rows["libvirt"]["data"]["uri_reason"]
    assert rows["privileges"]["status"] == "warn" and rows["privileges"]["fix"]
    assert rows["image-build"]["status"] == "ok", rows["image-build"]["detail"]  # depmod off PATH
    assert data["core_ok"] is True


def test_image_build_as_the_student(student: Student) -> None:
    p = student.vmlab("image", "build", "tiny", timeout=900)
    assert p.returncode == 0, p.stderr[-1500:]
    manifests = list((student.vmlab_home / "images" / "tiny").glob("*/manifest.json"))
    assert len(manifests) == 1 and manifests[0].stat().st_uid == student.uid


def test_guest_on_session_and_container_then_down_all_leaves_nothing(student: Student) -> None:
    try:
        g = parse_json(student.vmlab("up", "sg1", "--kind", "vm", "--json", timeout=300))
        assert g["accel"] in ("kvm", "tcg")
        c = parse_json(student.vmlab("up", "sc1", "--kind", "container", "--json", timeout=120))
        assert c["kind"] == "container"
        listed = {r["name"]: r for r in parse_json(student.vmlab("ls", "--json"))}
        assert listed["sg1"]["uri"] == SESSION  # recorded where it lives, found without -c
        ran = parse_json(student.vmlab("exec", "sg1", "--json", "--", "cat", "/proc/cmdline"))
        assert ran["rc"] == 0 and "console=ttyS0" in ran["stdout"]
        ran = parse_json(student.vmlab("exec", "sc1", "--json", "--", "id", "-u"))
        assert ran["rc"] == 0 and ran["stdout"].strip() == "0"
        assert _session_domains(student) != []
    finally:
        down = student.vmlab("down", "--all", "--json", timeout=180)
    destroyed = {d["name"] for d in parse_json(down)["destroyed"]}
    assert destroyed == {"sg1", "sc1"}
    assert wait_gone(lambda: _session_domains(student)), _session_domains(student)
    assert wait_gone(lambda: _containers(student)), _containers(student)


def test_compare_completes_with_privileged_parts_measured_inside_or_skipped(
    student: Student, tmp_path: Path
) -> None:
    out = student.home / "compare.json"
    p = student.vmlab("compare", "--runs", "1", "-o", str(out), timeout=900)
    try:
        assert p.returncode == 0, p.stderr[-2000:]
        report = json.loads(out.read_text())
    finally:
        student.vmlab("down", "--all", timeout=180)
    exps = report["experiments"]
    assert set(exps["startup"]) >= {"native", "container", "vm"}
    assert set(exps["memory"]) >= {"container", "vm"}
    container = exps["traps"]["container"]
    if container["values"].get("skipped"):
        assert container["values"]["skipped_reason"] and container["values"]["fix"]
    else:  # the student may not ptrace root's processes from the host: strace ran inside
        assert "inside the container" in container["provider"]
        lines = report["steps"]["compare"]["params"].get("io_lines", 3000)  # the variant's, if drawn
        assert container["counts"]["io:write"] >= lines  # one write per dd block, at least
    vm = exps["traps"]["vm"]
    assert vm["provider"] or vm["values"].get("skipped")
    assert _session_domains(student) == [] and _containers(student) == []
