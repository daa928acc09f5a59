"""The same contract checked on every runtime of the registry (docker, docker-runsc, libvirt): one ready
instance each, its ladder, exec, typed capabilities, and nothing left after destroy; then what only a
guest has (SSH with a pinned key, the QEMU monitor, the domain XML), on that same booted guest.

The former per-kind modules' checks on a shared guest or container live here, so the suite boots one
guest for all of them; the guest's failure paths (a panic, a hang) stay in test_libvirt_guest.py.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from tests.helpers import interrupt_when

from vmlab.backends import runtime_kind
from vmlab.backends.base import CONTAINER_STAGES, VM_STAGES
from vmlab.errors import BackendError
from vmlab.host.cpu import full_guest_accel, hw_virt

# Only the libvirt instance of the module-scoped fixture: the same booted guest, no skips for the others.
ON_THE_GUEST = pytest.mark.parametrize(
    "runtime_instance",
    [pytest.param("libvirt", marks=[pytest.mark.libvirt, pytest.mark.slow], id="libvirt")],
    indirect=True,
)
ON_RUNC = pytest.mark.parametrize(
    "runtime_instance", [pytest.param("docker", marks=pytest.mark.docker, id="docker")], indirect=True
)


def test_ladder_follows_the_runtime_stage_table(runtime_instance: Any) -> None:
    assert tuple(runtime_instance.ladder) == runtime_instance.stages
    expected = {"container": CONTAINER_STAGES, "sandbox": CONTAINER_STAGES, "vm": VM_STAGES}
    assert runtime_instance.stages == expected[runtime_instance.kind]
    stamps = list(runtime_instance.ladder.values())
    assert stamps == sorted(stamps)
    assert runtime_instance.kind == runtime_kind(runtime_instance.runtime)


def test_exec_output_and_exit_code(runtime_instance: Any, tiny_image: Any) -> None:
    assert runtime_instance.exec("echo hi; exit 3").rc == 3
    assert runtime_instance.exec(["echo", "hi"]).check().stdout == "hi\n"
    bad = runtime_instance.exec("echo oops >&2; exit 7")
    assert (bad.rc, bad.stderr.strip(), bad.ok) == (7, "oops", False)
    with pytest.raises(BackendError, match="exited 7"):
        bad.check()
    release = runtime_instance.exec(["cat", "/etc/vmlab/release"]).check().stdout
    assert f"digest={tiny_image.digest}" in release  # the same userspace on every runtime


def test_each_kernel_says_who_it_is(runtime_instance: Any, tiny_image: Any) -> None:
    """A container shares the host kernel; gVisor answers with its own (4.4.0); a guest boots the image."""
    release = runtime_instance.exec(["uname", "-r"]).check().stdout.strip()
    host = subprocess.run(["uname", "-r"], capture_output=True, text=True, check=True).stdout.strip()
    expected = {"container": host, "sandbox": "4.4.0", "vm": tiny_image.manifest.kernel_release}
    assert release == expected[runtime_instance.kind]
    assert (runtime_instance.guest_uptime() is not None) == (runtime_instance.kind == "vm")
    if runtime_instance.kind == "vm":
        assert runtime_instance.guest_uptime() > 0


def test_accel_says_what_isolates(runtime_instance: Any) -> None:
    accel, reason = full_guest_accel("auto")
    expected = {"container": "none", "sandbox": "gvisor", "vm": accel}
    assert runtime_instance.accel == expected[runtime_instance.kind] and runtime_instance.accel_reason
    if runtime_instance.kind == "vm":
        assert runtime_instance.accel_reason == reason
        if not hw_virt():
            assert accel == "tcg"
        dom_type = ET.fromstring(runtime_instance.dom.XMLDesc(0)).get("type")
        assert dom_type == ("kvm" if accel == "kvm" else "qemu")


def test_the_runtime_finds_it_again_by_its_tags(runtime_instance: Any) -> None:
    """Labels (Docker) or <metadata> (libvirt) carry name, lab and run: `ls` needs nothing else."""
    record = next(r for r in runtime_instance.backend.list_owned() if r.resource == runtime_instance.resource)
    assert (record.name, record.lab, record.runtime) == (
        runtime_instance.name,
        "tests",
        runtime_instance.runtime,
    )
    assert record.run_id and record.resource.endswith(f"{record.run_id}-{record.name}")


@ON_RUNC
def test_a_container_is_its_own_cgroup_without_network(runtime_instance: Any) -> None:
    assert runtime_instance.container.id in runtime_instance.exec(["cat", "/proc/1/cgroup"]).check().stdout
    assert runtime_instance.exec(["ls", "/sys/class/net"]).check().stdout.split() == ["lo"]


def test_memory_sample_names_the_runtime_processes(runtime_instance: Any) -> None:
    sample = runtime_instance.memory()
    roles = {p.role for p in sample.processes}
    expected = {"container": {"shim"}, "sandbox": {"shim", "sentry", "gofer"}, "vm": {"qemu"}}
    assert roles == expected[runtime_instance.kind]
    assert all(p.rss > 0 for p in sample.processes)
    assert (sample.guest_ram_bytes is not None) == (runtime_instance.kind == "vm")


def _counter_needs_root(inst: Any) -> str | None:
    """Why a normal user has no trap counter on this runtime here, from facts read without vmlab (the
    uid, debugfs, the runtime's own CLI); None where one must be there."""
    import os

    from tests.conftest import probe_command

    if os.geteuid() == 0:
        return None
    if inst.kind == "sandbox":
        return "gVisor's counts come from `runsc debug` and the Sentry's log, both root's"
    if inst.kind == "vm" and inst.accel == "kvm" and not os.access("/sys/kernel/debug/kvm", os.R_OK):
        return "KVM's exit counters live in debugfs, readable by root only"
    if inst.kind == "container":
        cli = "podman" if inst.runtime == "podman" else "docker"
        why = probe_command([cli, "exec", inst.resource, "test", "-x", "/usr/bin/strace"])
        if why is not None:
            return f"the container has no /usr/bin/strace to count from inside ({why})"
    return None


def test_trap_counter_counts_an_io_loop(runtime_instance: Any) -> None:
    """The provider has a name and the I/O phase is counted (exact figures depend on the provider)."""
    from vmlab.backends.capabilities import CapabilityMissing
    from vmlab.systemvm.params import Workloads

    try:
        counter = runtime_instance.trap_counter()
    except CapabilityMissing as e:
        why = _counter_needs_root(runtime_instance)
        if why is None:
            raise  # root, or a normal user with every fact a counter needs: it must count
        assert e.hint  # the missing counter names its fix
        pytest.skip(f"{runtime_instance.runtime} as a normal user: {why}")
    try:
        io = counter.phase("io", Workloads(io_lines=50).io(runtime_instance.io_sink), 0.0)
    finally:
        counter.close()
    assert counter.provider and io.get(counter.headline, 0) > 0


# --- what only a guest has, on the same booted guest --------------------------------------------


@pytest.fixture
def guest(runtime_instance: Any) -> Any:
    assert runtime_instance.kind == "vm"
    return runtime_instance


@ON_THE_GUEST
def test_guest_answers_ssh_on_a_forwarded_port(guest: Any) -> None:
    assert guest.ssh_banner.startswith("SSH-2.0-dropbear")
    guest.console_tail(1)  # reads what QEMU wrote since; the I/O workload may have pushed the marker out
    assert any(line.startswith("VMLAB_READY uptime=") for line in guest.console.text.splitlines())


@ON_THE_GUEST
def test_domain_carries_vmlab_metadata(guest: Any) -> None:
    from vmlab.backends.libvirt.adapter import metadata

    meta = metadata(guest.dom)
    assert meta is not None
    assert meta["name"] == guest.name and meta["lab"] == "tests" and meta["run_id"]
    assert int(meta["ssh_port"]) == guest.ssh_port > 0
    xml = guest.dom.XMLDesc(0)
    assert f"hostfwd=tcp:127.0.0.1:{guest.ssh_port}-:22" in xml
    serial = ET.fromstring(xml).find("devices/serial")
    assert serial is not None and serial.get("type") == "file"


@ON_THE_GUEST
def test_monitor_runs_hmp(guest: Any) -> None:
    assert "running" in guest.monitor("info status")
    if guest.accel == "tcg":
        assert "TB count" in guest.monitor("info jit")


@ON_THE_GUEST
def test_wrong_pinned_host_key_is_refused(guest: Any) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from vmlab.guest.ssh import SshSession

    other = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    session = SshSession("127.0.0.1", guest.ssh_port, other, guest.session().client_key)
    with pytest.raises(BackendError, match="not the pinned one"):
        session.run(["true"], timeout=30)


@ON_THE_GUEST
def test_ssh_uses_a_per_run_key_not_the_image_key(guest: Any, tiny_image: Any) -> None:
    import stat
    from pathlib import Path

    from vmlab.guest.ssh import SshSession

    run_key = Path(guest.meta["client_key"])
    assert run_key != tiny_image.client_key and stat.S_IMODE(run_key.stat().st_mode) == 0o600
    image_key_session = SshSession(
        "127.0.0.1", guest.ssh_port, tiny_image.host_public_key, tiny_image.client_key
    )
    with pytest.raises(BackendError, match=r"SSH to root@127\.0\.0\.1"):
        image_key_session.run(["true"], timeout=30)


@pytest.mark.docker
def test_published_ports_bind_to_loopback_only(container_factory: Any) -> None:
    from vmlab.backends import get_backend

    inst = container_factory("pub", options={"publish_ports": (8080,)})
    assert "eth0" in inst.exec(["ls", "/sys/class/net"]).check().stdout.split()
    record = next(r for r in get_backend("container").list_owned() if r.name == "pub")
    assert record.address.startswith("127.0.0.1:") and record.address.endswith("->8080/tcp")


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
    import sys
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
    got = interrupt_when(proc, lambda: run in _names(runtime), what="the resource appearing")
    if not got.sent:  # a container may be ready before we look: nothing to interrupt
        subprocess.run([vmlab, "down", "--run", run], capture_output=True, check=False)
        pytest.skip(f"{runtime}: `up` finished before the interrupt ({got.returncode})")
    assert got.returncode == 130, got.stderr
    assert run not in _names(runtime)
