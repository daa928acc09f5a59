"""The ksm, balloon and density tasks of system-vm with real guests (TCG here), real containers and a
real gVisor sandbox, small N and K; the lab's own checks grade each report.

KSM is a host-wide setting: every test here that switches it on compares /sys/kernel/mm/ksm before and
after, also when the run is interrupted with SIGINT in the middle of its scans. Interrupted runs are
`vmlab lab run` in a subprocess; what they leave is looked for with virsh and docker themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import failed_verdicts, interrupt_when

from vmlab.backends.base import InstanceSpec
from vmlab.backends.context import RunContext
from vmlab.errors import UsageError
from vmlab.paths import new_run_id
from vmlab.systemvm.ksmctl import SAVED, snapshot

pytestmark = [pytest.mark.libvirt, pytest.mark.slow]
KSM = Path("/sys/kernel/mm/ksm")


def _vmlab_argv() -> list[str]:
    return [sys.executable, "-c", "from vmlab.cli.main import main; main()"]


def _libvirt_names() -> str:
    out = subprocess.run(
        ["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def _docker_names(run_id: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=vmlab.run_id={run_id}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def _need_ksm_root() -> None:
    if os.geteuid() != 0 or not (KSM / "run").exists():
        pytest.skip("KSM's settings are host-wide: changing them needs root and a kernel with KSM")


def _run_task(tmp: Path, task: str, sets: dict[str, dict[str, Any]]) -> tuple[Any, list[dict[str, Any]]]:
    """`vmlab lab run system-vm --task TASK` in this process, then `vmlab check`'s verdicts."""
    from vmlab.check.grader import grade_report
    from vmlab.labs.catalog import load_lab
    from vmlab.labs.pipeline import RunRequest, run_lab
    from vmlab.report.io import load_report

    result = run_lab(
        RunRequest(lab="system-vm", tasks=[task], sets=sets, output=tmp / "report.json", student="s21")
    )
    report = load_report(tmp / "report.json")
    assert all(s.status == "ok" for s in report.steps.values()), report.steps
    results, _ = grade_report(report, load_lab("system-vm"), report_dir=tmp)
    mine = [r.model_dump(mode="json") for r in results if r.task == task]
    assert mine, f"no check of {task}"
    return result.report, mine


def test_ksm_two_guests_share_and_settings_come_back(
    tmp_path: Path, test_home: Path, tiny_image: Any, libvirt_available: str
) -> None:
    _need_ksm_root()
    before = snapshot()
    report, checks = _run_task(tmp_path, "t7-page-sharing", {"ksm": {"guests": 2}})
    assert snapshot() == before
    assert not SAVED.exists()
    ksm = report.experiments["ksm"]
    v = ksm.values
    assert failed_verdicts(checks) == [], v
    assert v["guests"] == 2 and len(ksm.samples) == 2
    assert v["full_scans"] >= 2 and v["pages_sharing"] > 0
    # ksmd is paused while the figures are read: every page of our two QEMUs that maps a KSM page is
    # one of the host-wide pages_shared (the KSM pages) + pages_sharing (their further mappings)
    assert 0 < v["merging_pages_guests"] <= v["pages_shared"] + v["pages_sharing"], v
    assert v["left_behind"] == 0 and report.run_id not in _libvirt_names()
    assert (tmp_path / "artifacts" / "ksm" / "ksm.png").stat().st_size > 0


def test_sigint_mid_scan_restores_ksm_and_destroys_guests(
    tmp_path: Path, test_home: Path, tiny_image: Any, libvirt_available: str
) -> None:
    _need_ksm_root()
    before = snapshot()
    pace = 19 if before.get("sleep_millisecs") != 19 else 21  # a pace the host does not have: "KSM is on"
    proc = subprocess.Popen(
        [
            *_vmlab_argv(),
            "lab",
            "run",
            "system-vm",
            "--task",
            "t7-page-sharing",
            "--set",
            "ksm.guests=2",
            "--set",
            "ksm.scans=20",  # far more than the run lives: the signal lands while ksmd scans
            "--set",
            f"ksm.sleep_millisecs={pace}",
            "-o",
            str(tmp_path / "report.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )

    def ksm_on() -> bool:
        return (KSM / "sleep_millisecs").read_text().strip() == str(pace)

    got = interrupt_when(proc, ksm_on, what="KSM switched on by the run", timeout=240, settle=1.0)
    assert got.sent, got.stderr
    assert got.returncode == 130, got.stderr
    assert snapshot() == before, got.stderr
    assert not SAVED.exists()
    run_id = json.loads((tmp_path / "report.json").read_text())["run_id"]
    assert run_id not in _libvirt_names()


def test_balloon_shrink_and_grow_seen_in_the_guest(
    tmp_path: Path, test_home: Path, tiny_image: Any, libvirt_available: str
) -> None:
    report, checks = _run_task(tmp_path, "t8-balloon", {"balloon": {"phase_s": 1.0}})
    assert failed_verdicts(checks) == []
    v = report.experiments["balloon"].values
    # the target falls by 256 - 128 = 128 MiB; virtio_balloon takes each page it holds out of the
    # guest's managed memory, so MemTotal falls by the same 128 MiB (within a page or two)
    assert abs(v["guest_total_drop_mib"] - 128) <= 1
    assert abs(v["grown_guest_total_mib"] - v["idle_guest_total_mib"]) <= 1
    assert v["shrunk_actual_mib"] == 128 and v["grown_actual_mib"] == 256  # libvirt's own view
    assert v["left_behind"] == 0 and report.run_id not in _libvirt_names()
    assert (tmp_path / "artifacts" / "balloon" / "balloon.png").stat().st_size > 0


@pytest.mark.docker
def test_density_small_k_every_kind(
    tmp_path: Path, test_home: Path, tiny_image: Any, libvirt_available: str, docker_available: None
) -> None:
    from tests.integration.conftest import require_runtime

    require_runtime("docker-runsc")
    report, checks = _run_task(tmp_path, "t9-density", {"density": {"ks": [1, 2]}})
    assert failed_verdicts(checks) == []
    group = report.experiments["density"]
    assert isinstance(group, dict) and set(group) == {"container", "sandbox", "vm"}
    for kind, exp in group.items():
        assert len(exp.series["k1_ready_s"]) == 1 and len(exp.series["k2_ready_s"]) == 2, kind
        assert exp.values["max_k"] == 2 and exp.values["left_behind"] == 0, kind
    assert report.run_id not in _libvirt_names() and _docker_names(report.run_id) == []


def test_sigint_while_guests_boot_leaves_nothing(
    tmp_path: Path, test_home: Path, tiny_image: Any, libvirt_available: str
) -> None:
    proc = subprocess.Popen(
        [
            *_vmlab_argv(),
            "lab",
            "run",
            "system-vm",
            "--task",
            "t9-density",
            "--set",
            'density.kinds=["vm"]',
            "--set",
            "density.ks=[2]",
            "-o",
            str(tmp_path / "report.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    # both domains exist (the launch is under way): interrupt while they boot
    got = interrupt_when(
        proc, lambda: _libvirt_names().count("-dv2x") == 2, what="two density guests defined", timeout=120
    )
    assert got.sent, got.stderr
    assert got.returncode == 130, got.stderr
    run_id = json.loads((tmp_path / "report.json").read_text())["run_id"]
    assert run_id not in _libvirt_names()


@pytest.mark.docker
def test_one_instance_failing_takes_the_batch_down(
    test_home: Path, tiny_image: Any, docker_available: None
) -> None:
    """Three containers launched together; one names an image that does not exist: the launch fails
    with that instance's error while the other two are created, and both are gone afterwards."""
    from vmlab.systemvm.fleet import Fleet

    run_id = new_run_id()
    specs = [
        InstanceSpec(name=f"f{i}", run_id=run_id, lab="tests", name_scope="run", image=image)
        for i, image in enumerate(("tiny", "no-such-image", "tiny"))
    ]
    with pytest.raises(UsageError, match="no-such-image"), Fleet("docker", RunContext(), specs) as fleet:
        fleet.launch(90)
    assert fleet.left_behind() == 0
    assert _docker_names(run_id) == []
