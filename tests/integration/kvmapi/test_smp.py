"""Two vCPUs on the real /dev/kvm: exact exits per vCPU, the kernel's halt counters, and clean-up.

Expected counts are derived by hand from the programs' instructions (see each test), not read from the
programs' own `expect` tables.
"""

import os
import signal
import threading

import pytest

from vmlab.kvmapi.smp import SmpFault, SmpLimit, run_smp
from vmlab.kvmapi.smp_guests import assemble_smp, smp_builtin
from vmlab.kvmapi.vmm import Limits

pytestmark = pytest.mark.kvm

N = 40


def _vcpu_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("vmlab-vcpu")]


@pytest.fixture
def no_threads() -> None:
    """No vCPU thread outlives its run."""
    yield
    assert _vcpu_threads() == []


def test_spin_exits_once_per_vcpu(kvm_device: str, no_leaks: None, no_threads: None) -> None:
    # stores, compares, pause and jumps never exit: each vCPU leaves only at its OUT to 0xf4
    r = run_smp(smp_builtin("smp-spin", N), limits=Limits(wall_s=30))
    for v in r.vcpus:
        assert dict(v.exits) == {"IO": 1}
        assert (v.stop, v.exit_value) == ("debug-exit", 0)


def test_doorbell_exits_per_round(kvm_device: str, no_leaks: None, no_threads: None) -> None:
    # per round: vCPU 0 rings (OUT 0x520) and halts; vCPU 1 halts and rings. Plus one stop OUT each:
    # IO = N + 1, HLT = N on both; every wake-up found its round in shared memory (exit value 0)
    r = run_smp(smp_builtin("smp-doorbell", N), limits=Limits(wall_s=30))
    for v in r.vcpus:
        assert dict(v.exits) == {"IO": N + 1, "HLT": N}
        assert v.io_ports[0x520] == N and v.doorbells_sent == N and v.wakeups == N
        assert (v.stop, v.exit_value) == ("debug-exit", 0)
        assert v.kernel_stats is not None and v.kernel_stats["halt_exits"] == N


def test_ipi_stays_in_the_kernel(kvm_device: str, no_leaks: None, no_threads: None) -> None:
    # in-kernel irqchip: ICR writes, IPIs, hlt and EOI never reach user space; each vCPU executes one
    # hlt per round (nothing else can wake it early) and receives one IPI per round
    r = run_smp(smp_builtin("smp-ipi", N), limits=Limits(wall_s=30))
    for v in r.vcpus:
        assert dict(v.exits) == {"IO": 1}
        assert (v.stop, v.exit_value) == ("debug-exit", 0)
        assert v.kernel_stats is not None
        assert v.kernel_stats["halt_exits"] == N
        assert v.kernel_stats["irq_injections"] in (0, N)  # 0 where APICv posts interrupts without KVM


def _two(cpu0: str, cpu1: str, bits: int = 32) -> object:
    src = f"bits {bits}\ncpu0:\n{cpu0}\ncpu1:\n{cpu1}\n"
    return assemble_smp("test", "test", src, 1, ({}, {}))


SPIN = "    spin{i}: jmp spin{i}"


@pytest.mark.parametrize("faulty", [0, 1])
def test_fault_in_either_vcpu_stops_both(
    kvm_device: str, no_leaks: None, no_threads: None, faulty: int
) -> None:
    bodies = [SPIN.format(i=0), SPIN.format(i=1)]
    bodies[faulty] = "    ud2"  # no IDT: #UD -> #DF -> triple fault, KVM_EXIT_SHUTDOWN
    with pytest.raises(SmpFault, match=f"vCPU {faulty} of 'test' stopped with SHUTDOWN") as e:
        run_smp(_two(*bodies), limits=Limits(wall_s=30))  # type: ignore[arg-type]
    assert dict(e.value.run.vcpus[faulty].exits) == {"SHUTDOWN": 1}
    assert e.value.run.vcpus[1 - faulty].total_exits == 0  # the spinner was stopped, not failed


def test_timeout_stops_both(kvm_device: str, no_leaks: None, no_threads: None) -> None:
    with pytest.raises(SmpLimit, match=r"still running after 0\.3 s"):
        run_smp(_two(SPIN.format(i=0), SPIN.format(i=1), 16), limits=Limits(wall_s=0.3))  # type: ignore[arg-type]


def test_ctrl_c_stops_both(kvm_device: str, no_leaks: None, no_threads: None) -> None:
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_smp(_two(SPIN.format(i=0), SPIN.format(i=1), 16), limits=Limits(wall_s=30))  # type: ignore[arg-type]
    finally:
        timer.cancel()


def test_cli_runs_a_two_vcpu_program(kvm_device: str) -> None:
    import json

    from typer.testing import CliRunner

    from vmlab.cli.main import app

    r = CliRunner().invoke(app, ["kvm", "run", "smp-doorbell", "--count", "20", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    # 20 rounds: 21 IO and 20 HLT per vCPU (see test_doorbell_exits_per_round)
    assert [v["exits"] for v in data["vcpus"]] == [{"IO": 21, "HLT": 20}, {"IO": 21, "HLT": 20}]
    t = CliRunner().invoke(app, ["kvm", "run", "smp-spin", "--count", "5"])
    assert t.exit_code == 0 and "5 rounds" in t.stdout
    s = CliRunner().invoke(app, ["kvm", "source", "smp-ipi"])
    assert s.exit_code == 0 and "ICR" in s.stdout
