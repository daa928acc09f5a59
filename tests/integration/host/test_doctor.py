"""The doctor against the real daemons that `make setup` started."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from vmlab.cli.main import app
from vmlab.host.cpu import full_guest_accel, hw_virt
from vmlab.host.doctor import diagnose


def test_doctor_json_against_real_host() -> None:
    result = CliRunner().invoke(app, ["doctor", "--json"])
    data = json.loads(result.stdout)
    rows = {r["name"]: r for r in data["checks"]}
    assert set(rows) >= {"python", "kvm", "full-guest-accel", "libvirt", "docker", "kvm-counters"}
    assert result.exit_code == (0 if data["core_ok"] else 1)
    for row in rows.values():
        assert row["status"] in ("ok", "warn", "fail")
        if row["status"] == "fail":
            assert row["fix"], f"{row['name']} fails without saying how to fix it"


def test_libvirt_and_docker_answer() -> None:
    """make setup starts both daemons; the doctor must see them and what they offer."""
    rows = {r.name: r for r in diagnose().rows}
    assert rows["libvirt"].status == "ok", rows["libvirt"].detail
    assert "qemu" in rows["libvirt"].data["domain_types"]
    assert rows["docker"].status == "ok", rows["docker"].detail
    assert rows["docker"].data["cgroup_version"] in ("1", "2")


def test_accel_row_agrees_with_cpu_flags() -> None:
    row = next(r for r in diagnose().rows if r.name == "full-guest-accel")
    accel, _ = full_guest_accel("auto")
    assert row.data["accel"] == accel
    assert row.data["hw_virt"] == hw_virt()
    if not hw_virt():
        assert accel == "tcg" and "TCG" in row.detail


def test_kvm_probe_agrees_with_the_kvm_api_lab() -> None:
    """host/kvm.py asks /dev/kvm what the lab's own Kvm handle reads (when this user may open it)."""
    import pytest

    from vmlab.host.kvm import probe
    from vmlab.kvmapi.machine import Kvm

    info = probe()
    if not info["accessible"]:
        assert info["error"]
        pytest.skip(f"/dev/kvm: {info['error']}")
    with Kvm() as kvm:
        assert info["api_version"] == kvm.api_version and info["api_ok"]
        assert info["capabilities"] == kvm.capabilities()


def test_distro_row_names_this_release_and_what_set_up_installed() -> None:
    """After `make setup` the row is ok on a tested release, and what it says was chosen is installed
    (dpkg, independently of vmlab's own probe)."""
    import subprocess
    from pathlib import Path

    os_release = dict(
        line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
    )
    row = next(r for r in diagnose().rows if r.name == "distro")
    assert row.data["id"] == os_release["ID"].strip('"')
    assert row.data["version_id"] == os_release.get("VERSION_ID", "").strip('"')
    for pkg in (row.data["chosen"]["jdk"], *row.data["chosen"]["docker"]):
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True, check=False
        ).stdout
        if pkg.startswith("openjdk") or pkg == "docker-cli":  # an existing docker-ce keeps docker.io out
            assert "install ok installed" in status, pkg
    if row.data["tested"]:
        assert row.status == "ok", row.detail
