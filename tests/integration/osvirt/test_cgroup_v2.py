"""The model box on cgroup v2 (the unified tree most laptops have): OOM kill and pids.max.

This host has cgroup v1 (per-controller hierarchies, no /sys/fs/cgroup/cgroup.controllers), so the
test skips with that reason here; on a v2 host it runs the same limits as the v1 test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration.osvirt.conftest import SOLUTION

from vmlab.osvirt.box import BoxLimits, leftovers, run_box
from vmlab.osvirt.probes import FORK_SCRIPT, alloc_script

pytestmark = pytest.mark.slow


def test_limits_on_cgroup_v2(rootfs: Path) -> None:
    if not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        pytest.skip("cgroup v1 here: /sys/fs/cgroup has per-controller hierarchies, no cgroup.controllers")
    lim = BoxLimits("v2", 48, 12, None, [], 20.0)
    mem = run_box(SOLUTION, rootfs, lim, ["/bin/sh", "-c", alloc_script(96 << 20)], "vmlab-osvirt-v2-mem")
    assert mem.probes()["alloc_status"] == "137"  # SIGKILL from the OOM killer: 128 + 9
    fork_loop = ["/bin/sh", "-c", FORK_SCRIPT.replace("__N__", "20")]
    forks = run_box(SOLUTION, rootfs, lim, fork_loop, "vmlab-osvirt-v2-f")
    assert int(forks.probes()["started"]) == 12 - 2  # the box's child and PID 1 count in pids.max
    assert [p for p in leftovers() if p.name.startswith("vmlab-osvirt-v2-")] == []
