"""Parts of the os-virt re-run without a jail: drawing the hidden values, reading a process's view.

Expected values are derived by hand in the comments (the drawing's arithmetic, a mount table written
out), not taken from a run.
"""

from __future__ import annotations

import os
from pathlib import Path

from vmlab.osvirt.outside import View, _fs_path, cgroup_limits, reachable
from vmlab.osvirt.rerun import draw
from vmlab.osvirt.rerun.model import RerunParams


def test_draw_from_fixed_bytes() -> None:
    raw = bytes(range(32))  # 00 01 02 ... 1f
    h = draw(raw, RerunParams())
    # host_n: 1000 + 0x0001 % 9000 = 1001; deny: 0x02 % 2 = 0 -> chmod
    assert h.host_n == 1001 and h.deny == "chmod"
    # memory: 40 + 0x0304 % 121 = 40 + 772 % 121 = 40 + 46 = 86, rounded down to 8 MiB: 80
    assert h.memory_mib == 80
    # pids: 12 + 0x0506 % 37 = 12 + 1286 % 37 = 12 + 28 = 40
    assert h.pids_max == 40
    assert h.nonce == "vmlab-08090a0b0c0d" and h.iface == "vr0e0f1011" and len(h.iface) <= 15


def test_draw_stays_in_its_ranges() -> None:
    p = RerunParams()
    for seed in range(200):
        h = draw(os.urandom(32) if seed % 2 else bytes([seed]) * 32, p)
        assert 1000 <= h.host_n <= 9999 and 40 <= h.memory_mib <= 160 and h.memory_mib % 8 == 0
        assert 12 <= h.pids_max <= 48 and h.deny in ("chmod", "rmdir")


def test_a_mount_of_the_files_file_system_makes_it_reachable(tmp_path: Path) -> None:
    secret = tmp_path / "hidden-1"
    secret.write_text("x")
    found = _fs_path(secret)
    assert found is not None
    dev, inner = found
    assert inner.endswith("/hidden-1")
    # the box's own table: its root (a bind of tmp_path/rootfs: a sibling of the file) and /proc
    rootfs_root = inner.rsplit("/", 1)[0] + "/rootfs"
    boxed = [f"100 99 {dev} {rootfs_root} / rw - ext4 /dev/x rw", "101 100 0:99 / /proc rw - proc proc rw"]
    gone = 2**22 + 1  # no such PID: only the mount table decides
    assert not reachable(secret, View(gone, mountinfo=boxed))
    # the old root left mounted at /.oldroot: the file system's root "/" holds every path of it
    kept = [*boxed, f"102 100 {dev} / /.oldroot rw - ext4 /dev/x rw"]
    assert reachable(secret, View(gone, mountinfo=kept))
    # the same device, another file system's path: "/rootfs2" is no prefix of the file's path
    other = [*boxed, f"103 100 {dev} {rootfs_root}2 /mnt rw - ext4 /dev/x rw"]
    assert not reachable(secret, View(gone, mountinfo=other))


def test_cgroup_limits_v1_and_v2(tmp_path: Path) -> None:
    v1 = tmp_path / "v1"
    (v1 / "memory" / "d" / "box").mkdir(parents=True)
    (v1 / "pids" / "d" / "box").mkdir(parents=True)
    (v1 / "memory" / "d" / "box" / "memory.limit_in_bytes").write_text("41943040\n")
    (v1 / "pids" / "d" / "box" / "pids.max").write_text("20\n")
    got = cgroup_limits({"memory": "/d/box", "pids": "/d/box", "cpu": "/"}, root=v1)
    assert got == {"memory": "41943040", "pids": "20"}
    v2 = tmp_path / "v2"
    (v2 / "d" / "box").mkdir(parents=True)
    (v2 / "cgroup.controllers").write_text("memory pids\n")
    (v2 / "d" / "box" / "memory.max").write_text("max\n")
    (v2 / "d" / "box" / "pids.max").write_text("12\n")
    assert cgroup_limits({"": "/d/box"}, root=v2) == {"memory": "max", "pids": "12"}
