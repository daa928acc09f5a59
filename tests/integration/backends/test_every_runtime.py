"""The same contract checked on every runtime of the registry (docker, docker-runsc, libvirt): one ready
instance each, its ladder, exec, typed capabilities, and nothing left after destroy."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from vmlab.backends import runtime_kind


def test_ladder_follows_the_runtime_stage_table(runtime_instance: Any) -> None:
    assert tuple(runtime_instance.ladder) == runtime_instance.stages
    stamps = list(runtime_instance.ladder.values())
    assert stamps == sorted(stamps)
    assert runtime_instance.kind == runtime_kind(runtime_instance.runtime)


def test_exec_output_and_exit_code(runtime_instance: Any) -> None:
    assert runtime_instance.exec("echo hi; exit 3").rc == 3
    assert runtime_instance.exec(["echo", "hi"]).check().stdout == "hi\n"


def test_each_kernel_says_who_it_is(runtime_instance: Any, tiny_image: Any) -> None:
    """A container shares the host kernel; gVisor answers with its own (4.4.0); a guest boots the image."""
    release = runtime_instance.exec(["uname", "-r"]).check().stdout.strip()
    host = subprocess.run(["uname", "-r"], capture_output=True, text=True, check=True).stdout.strip()
    expected = {"container": host, "sandbox": "4.4.0", "vm": tiny_image.manifest.kernel_release}
    assert release == expected[runtime_instance.kind]


def test_memory_sample_names_the_runtime_processes(runtime_instance: Any) -> None:
    sample = runtime_instance.memory()
    roles = {p.role for p in sample.processes}
    expected = {"container": {"shim"}, "sandbox": {"shim", "sentry", "gofer"}, "vm": {"qemu"}}
    assert roles == expected[runtime_instance.kind]
    assert all(p.rss > 0 for p in sample.processes)
    assert (sample.guest_ram_bytes is not None) == (runtime_instance.kind == "vm")


def test_trap_counter_counts_an_io_loop(runtime_instance: Any) -> None:
    """The provider has a name and the I/O phase is counted (exact figures depend on the provider)."""
    import os

    from vmlab.backends.capabilities import CapabilityMissing
    from vmlab.experiments.compare import Workloads

    try:
        counter = runtime_instance.trap_counter()
    except CapabilityMissing as e:
        assert os.geteuid() != 0 and e.hint  # only a normal user may lack a counter, with a fix
        return
    try:
        io = counter.phase("io", Workloads(io_lines=50).io(runtime_instance.io_sink), 0.0)
    finally:
        counter.close()
    assert counter.provider and io.get(counter.headline, 0) > 0


@pytest.mark.slow
def test_destroy_is_idempotent_and_leaves_nothing(runtime_factory: Any) -> None:
    inst = runtime_factory("gone", ready=False)  # started, not waited for: a boot costs seconds
    backend = inst.backend
    inst.destroy()
    inst.destroy()
    assert all(r.resource != inst.resource for r in backend.list_owned())


def _names(runtime: str) -> str:
    argv = (
        ["virsh", "-c", "qemu:///system", "list", "--all", "--name"]
        if runtime == "libvirt"
        else ["docker", "ps", "-a", "--format", "{{.Names}}"]
    )
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["docker", "docker-runsc", "libvirt"])
def test_sigint_during_up_leaves_nothing(runtime: str, test_home: Any, tiny_image: Any) -> None:
    """Ctrl-C once the resource exists, on every runtime: exit 130 and nothing left."""
    import signal
    import sys
    import time
    from pathlib import Path

    from tests.integration.conftest import require_runtime

    from vmlab.paths import new_run_id

    require_runtime(runtime)
    run = new_run_id()
    vmlab = str(Path(sys.executable).with_name("vmlab"))
    kind = runtime_kind(runtime)
    proc = subprocess.Popen(
        [vmlab, "up", "sig1", "--kind", kind, "--runtime", runtime, "--run", run],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while run not in _names(runtime):
            if proc.poll() is not None:  # a container may be ready before we look: nothing to interrupt
                subprocess.run([vmlab, "down", "--run", run], capture_output=True, check=False)
                pytest.skip(f"{runtime}: `up` finished before the interrupt ({proc.returncode})")
            assert time.monotonic() < deadline, "the resource never appeared"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert run not in _names(runtime)
