"""The os-virt `requires` probes: faked sysctls and cgroup trees (parsing), then one real probe each.

The real tests compare the probe with an independent attempt on this host: `unshare --user true` for
user namespaces, a mkdir/rmdir of a cgroup in /sys/fs/cgroup for the cgroup tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from vmlab.host.kernel_features import SYSCTL, cgroup_write_unmet, userns_unmet
from vmlab.host.requirements import probe_for, unmet


def _sysctls(**values: str) -> Callable[[Path], str | None]:
    """A fake reader: sysctl name with dots ("user.max_user_namespaces") -> its value, else absent."""
    files = {SYSCTL / k.replace("__", "/"): v for k, v in values.items()}
    return lambda p: files.get(p)


def test_userns_on_when_no_switch_says_otherwise() -> None:
    assert userns_unmet(_sysctls(user__max_user_namespaces="63000"), euid=1000, has_ns=True) is None


def test_userns_max_zero_stops_root_too() -> None:
    found = userns_unmet(_sysctls(user__max_user_namespaces="0"), euid=0, has_ns=True)
    assert found is not None and "max_user_namespaces = 0" in found.reason
    assert "sysctl -w user.max_user_namespaces" in found.fix


def test_debian_switch_stops_a_normal_user_only() -> None:
    read = _sysctls(kernel__unprivileged_userns_clone="0")
    found = userns_unmet(read, euid=1000, has_ns=True)
    assert found is not None and "unprivileged_userns_clone = 0" in found.reason
    assert userns_unmet(read, euid=0, has_ns=True) is None


def test_apparmor_switch_stops_a_normal_user() -> None:
    read = _sysctls(kernel__apparmor_restrict_unprivileged_userns="1")
    found = userns_unmet(read, euid=1000, has_ns=True)
    assert found is not None and "apparmor_restrict_unprivileged_userns" in found.fix


def test_no_user_namespaces_in_the_kernel() -> None:
    found = userns_unmet(_sysctls(), euid=0, has_ns=False)
    assert found is not None and "CONFIG_USER_NS" in found.reason


def _v1(tmp_path: Path, controllers: tuple[str, ...] = ("memory", "pids", "cpu")) -> Path:
    for c in controllers:
        (tmp_path / c).mkdir()
    return tmp_path


def test_cgroup_v1_writable_and_not(tmp_path: Path) -> None:
    root = _v1(tmp_path)
    assert cgroup_write_unmet(root, writable=lambda p: True) is None
    found = cgroup_write_unmet(root, writable=lambda p: p.name != "pids")
    assert found is not None and "pids" in found.reason and "root" in found.fix


def test_cgroup_v1_missing_hierarchy(tmp_path: Path) -> None:
    found = cgroup_write_unmet(_v1(tmp_path, ("memory", "cpu")), writable=lambda p: True)
    assert found is not None and "pids" in found.reason


def test_cgroup_v2_controllers_and_write(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    assert cgroup_write_unmet(tmp_path, writable=lambda p: True) is None
    found = cgroup_write_unmet(tmp_path, writable=lambda p: False)
    assert found is not None and "v2" in found.reason and "root" in found.fix
    (tmp_path / "cgroup.controllers").write_text("cpu io memory\n")
    found = cgroup_write_unmet(tmp_path, writable=lambda p: True)
    assert found is not None and "pids" in found.reason


def test_registered_by_name() -> None:
    """The names resolve to these probes, not to the fallback (a program called `userns` on PATH)."""
    assert probe_for("userns")() == userns_unmet()
    assert probe_for("cgroup-write")() == cgroup_write_unmet()
    assert unmet(["userns", "cgroup-write"]) == [u for u in (userns_unmet(), cgroup_write_unmet()) if u]


def test_real_userns_probe_agrees_with_unshare() -> None:
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) to compare with (util-linux)")
    tried = subprocess.run(["unshare", "--user", "true"], capture_output=True, timeout=30, check=False)
    assert (userns_unmet() is None) == (tried.returncode == 0), tried.stderr


def test_real_cgroup_probe_agrees_with_a_mkdir() -> None:
    root = Path("/sys/fs/cgroup")
    v2 = (root / "cgroup.controllers").exists()
    probe_dir = root / ("" if v2 else "pids") / f"vmlab-osvirt-probe-{os.getpid()}"
    try:
        probe_dir.mkdir()
        made = True
    except OSError:
        made = False
    finally:
        if probe_dir.is_dir():
            probe_dir.rmdir()
    assert (cgroup_write_unmet() is None) == made
