"""The `podman` runtime as a normal user (issue #20): rootless, no docker group needed, the tiny image
imported from its rootfs.tar into the user's own store; up, exec, ls, the shell command, compare and
down through the CLI, and nothing left in the user's store afterwards. As root the runtime refuses in
one line (tests/unit/backends/test_podman_units.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.nonroot.conftest import Student, parse_json, wait_gone

pytestmark = [pytest.mark.podman, pytest.mark.slow]


@pytest.fixture(scope="module")
def podder(student: Student) -> Iterator[Student]:
    """The throwaway student with podman usable; their podman store and run folders go afterwards."""
    from tests.conftest import unavailable

    if shutil.which("podman") is None:
        unavailable("podman", "not installed (apt-get install podman uidmap fuse-overlayfs slirp4netns)")
    p = student.run(["podman", "info", "--format", "{{.Host.Security.Rootless}}"], timeout=120)
    if p.returncode != 0 or p.stdout.strip() != "true":
        unavailable("rootless podman for a new user", (p.stderr.strip().splitlines() or ["?"])[-1])
    try:
        yield student
    finally:
        student.run(["podman", "rm", "--all", "--force", "--time", "0"], timeout=120)
        student.run(["podman", "system", "reset", "--force"], timeout=300)
        for folder in (f"/tmp/podman-run-{student.uid}", f"/tmp/containers-user-{student.uid}"):
            shutil.rmtree(folder, ignore_errors=True)


def _podman_names(student: Student) -> list[str]:
    """The student's containers, as podman itself lists them (not vmlab)."""
    p = student.run(["podman", "ps", "-a", "--format", "{{.Names}}"], timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


def test_doctor_shows_rootless_podman(podder: Student) -> None:
    rows = {r["name"]: r for r in parse_json(podder.vmlab("doctor", "--json", timeout=180))["checks"]}
    assert rows["podman"]["status"] == "ok", rows["podman"]
    assert rows["podman"]["detail"].endswith("rootless true")


def test_up_exec_ls_shell_down_on_podman(podder: Student) -> None:
    build = podder.vmlab("image", "build", "tiny", timeout=900)
    assert build.returncode == 0, build.stderr[-1500:]
    try:
        up = parse_json(podder.vmlab("up", "pp1", "--kind", "container", "--runtime", "podman", "--json"))
        assert up["runtime"] == "podman"
        assert list(up["ladder_s"]) == ["create_called", "created", "running", "first_exec"]
        resource = up["resource"]
        assert resource in _podman_names(podder)
        # rootless: root inside is the student outside, one uid mapped (uid_map: inside, outside, count)
        ran = parse_json(podder.vmlab("exec", "pp1", "--json", "--", "cat", "/proc/self/uid_map"))
        assert ran["rc"] == 0 and ran["stdout"].split()[:3] == ["0", str(podder.uid), "1"]
        listed = {r["name"]: r for r in parse_json(podder.vmlab("ls", "--json"))}
        assert listed["pp1"]["runtime"] == "podman" and listed["pp1"]["resource"] == resource
        code = (
            "from vmlab.backends.lifecycle import attached\n"
            "with attached('pp1') as i: print(' '.join(i.shell_argv()))"
        )
        shell = podder.run([podder.python, "-c", code], timeout=120)
        assert shell.stdout.split() == ["podman", "exec", "-it", resource, "/bin/sh"], shell.stderr
    finally:
        down = podder.vmlab("down", "pp1", "--json", timeout=180)
    assert {d["name"] for d in parse_json(down)["destroyed"]} == {"pp1"}
    assert wait_gone(lambda: _podman_names(podder)), _podman_names(podder)


def test_compare_on_podman_measures_startup_and_memory(podder: Student) -> None:
    out: Path = podder.home / "compare-podman.json"
    args = ["compare", "--runs", "1", "--kinds", "container", "--runtime", "podman", "-o", str(out)]
    p = podder.vmlab(*args, timeout=900)
    try:
        assert p.returncode == 0, p.stderr[-2000:]
        report = json.loads(out.read_text())
    finally:  # compare removes its instances itself; this only catches a failure's leftovers
        podder.run(["podman", "rm", "--all", "--force", "--time", "0"], timeout=120)
    exps = report["experiments"]
    start = exps["startup"]["container"]
    assert start["provenance"]["backend"] == "podman" and len(start["samples"]) == 1
    mem = exps["memory"]["container"]["values"]
    assert mem["idle_conmon_rss"] > 0 and mem["after_workload_rss"] > 0
    traps = exps["traps"]["container"]
    assert not traps["values"].get("skipped"), traps
    # by hand: dd bs=64 count=N reads and writes N blocks, so the I/O phase makes at least 2N calls
    lines = report["steps"]["compare"]["params"].get("io_lines", 3000)
    assert traps["counts"]["io:total"] >= 2 * lines
    assert _podman_names(podder) == []
