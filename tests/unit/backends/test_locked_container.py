"""The locked-down container of the Docker runtime (what `vmlab grade` re-runs a student's code in):
the lock-down as Docker's create() arguments, and labels `ls` and `down` never select. The same
container is run for real in tests/integration/grade/test_sandbox_labels.py."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("docker")

from vmlab.backends.docker.locked import Locked
from vmlab.errors import UsageError


def _run(**kw: object) -> Locked:
    base: dict[str, object] = {"image": "img:1", "argv": ("/bin/true",), "labels": {"vmlab.purpose": "rerun"}}
    return Locked(**{**base, **kw})  # type: ignore[arg-type]


def test_the_lock_down_is_what_docker_is_asked_for() -> None:
    kw = _run(mounts={"/tmp/x": "/in"}, memory_mib=256, cpus=0.5, pids=32).create_kwargs()
    assert kw["network_mode"] == "none" and kw["read_only"] is True
    assert kw["cap_drop"] == ["ALL"] and kw["security_opt"] == ["no-new-privileges"]
    assert kw["volumes"] == {"/tmp/x": {"bind": "/in", "mode": "ro"}}
    # 0.5 CPU is 5e8 nano-CPUs; memory and swap both capped so the limit cannot be swapped around
    assert kw["nano_cpus"] == 500_000_000 and kw["mem_limit"] == kw["memswap_limit"] == "256m"
    assert kw["pids_limit"] == 32 and kw["user"] == "65534:65534"
    assert "ports" not in kw and "devices" not in kw and "privileged" not in kw


def test_a_device_is_passed_only_when_asked() -> None:
    kw = _run(devices=("/dev/kvm",), group_add=("108",)).create_kwargs()
    assert kw["devices"] == ["/dev/kvm:/dev/kvm:rw"] and kw["group_add"] == ["108"]


@pytest.mark.parametrize("key", ["vmlab.owner", "vmlab.name"])
def test_labels_that_lifecycle_commands_select_on_are_refused(key: str) -> None:
    with pytest.raises(UsageError, match=re.escape(key)):
        _run(labels={"vmlab.purpose": "rerun", key: "x"}).create_kwargs()


def test_a_locked_container_says_what_it_is_for() -> None:
    with pytest.raises(UsageError, match=r"vmlab\.purpose"):
        _run(labels={"vmlab.rerun": "grade"}).create_kwargs()
    assert _run().create_kwargs()["labels"] == {"vmlab.purpose": "rerun"}
