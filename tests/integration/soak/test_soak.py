"""A loaded host, as a lab room or a busy runner makes one: `vmlab compare --runs 20` (guest, sandbox,
container) beside three lab runs at once. Every run must end on its own terms (a timing check may
fail under load: exit 1 is a verdict, not a fault), every report must be valid and complete, and
nothing of any run may be left: no domain, container or QEMU process naming its run id."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.soak, pytest.mark.libvirt, pytest.mark.docker, pytest.mark.kvm, pytest.mark.slow]

VMLAB = str(Path(sys.executable).with_name("vmlab"))
DATA = Path(__file__).resolve().parents[2] / "data"


def _left(run_id: str) -> list[str]:
    found = []
    virsh = subprocess.run(["virsh", "list", "--all", "--name"], capture_output=True, text=True, check=False)
    found += [d for d in virsh.stdout.split() if run_id in d]
    docker = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, check=False
    )
    found += [c for c in docker.stdout.split() if run_id in c]
    qemu = subprocess.run(
        ["pgrep", "-f", f"guest=vmlab-{run_id}"], capture_output=True, text=True, check=False
    )
    found += [f"qemu {p}" for p in qemu.stdout.split()]
    return found


def test_compare_20_runs_beside_three_lab_runs(tmp_path: Path, test_home: Path, tiny_image: Any) -> None:
    from vmlab.report.io import load_report

    env = {**os.environ, "VMLAB_HOME": str(test_home)}
    jobs = {
        "compare": [VMLAB, "compare", "--runs", "20", "--no-plots"],
        "warmup": [VMLAB, "lab", "run", "warmup"],
        "kvm-api": [
            VMLAB,
            "lab",
            "run",
            "kvm-api",
            "--input",
            f"program={DATA / 'kvm-api' / 'line_hypercall.asm'}",
        ],
        "hll-vm": [VMLAB, "lab", "run", "hll-vm"],
    }
    procs = {
        name: subprocess.Popen(
            [*argv, "-o", str(tmp_path / name / "report.json")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, argv in jobs.items()
    }
    ended = {name: (p.wait(timeout=3000), p.stderr.read() if p.stderr else "") for name, p in procs.items()}
    for name, (rc, err) in ended.items():
        assert rc in (0, 1), (name, rc, err[-2000:])
        assert "Traceback" not in err, (name, err[-2000:])
        report = load_report(tmp_path / name / "report.json")
        assert report.run.status == "complete", name
        assert all(s.status == "ok" for s in report.steps.values()), (name, report.steps)
        assert _left(report.run_id) == [], name
