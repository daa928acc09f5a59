"""The VMM against the real kernel: exact exit counts per program, stats fd, files, error paths.

Exit counts below are written out here, not taken from the programs' own `expect` tables.
"""

import os
from pathlib import Path

import pytest

from vmlab.kvmapi.guest import from_file
from vmlab.kvmapi.machine import Kvm
from vmlab.kvmapi.programs import builtin, message
from vmlab.kvmapi.stats import StatsFd, read_debugfs
from vmlab.kvmapi.vmm import GuestFault, GuestLimit, Limits, run_program

pytestmark = pytest.mark.kvm

MSG = message(1024)

EXPECTED = [
    # program, n, exits seen by the VMM, guest output (None: not checked)
    ("hello", None, {"IO": 2, "HLT": 1}, "4\n"),
    ("hello-pm", None, {"IO": 2, "HLT": 1}, "4\n"),
    ("console-bytewise", None, {"IO": 1024, "HLT": 1}, MSG),
    ("console-hypercall", None, {"IO": 1, "HLT": 1}, MSG),
    ("console-mmio", None, {"MMIO": 1024, "HLT": 1}, MSG),
    ("console-bytewise", 10, {"IO": 10, "HLT": 1}, MSG[:10]),
    ("out", 300, {"IO": 300, "HLT": 1}, ""),
    ("cpuid", 300, {"HLT": 1}, ""),
    ("mmio", 300, {"MMIO": 300, "HLT": 1}, ""),
    ("loop", 300, {"HLT": 1}, ""),
    ("debug-exit", None, {"IO": 4}, "ok\n"),
]


@pytest.mark.parametrize(("name", "n", "exits", "output"), EXPECTED, ids=[f"{e[0]}-{e[1]}" for e in EXPECTED])
def test_builtin_exact_exits(
    kvm_device: str, no_leaks: None, name: str, n: int | None, exits: dict[str, int], output: str
) -> None:
    r = run_program(builtin(name, n), device=kvm_device, limits=Limits(wall_s=20))
    assert dict(r.exits) == exits
    assert r.text == output


def test_rep_outsb_delivers_the_message(kvm_device: str) -> None:
    """How many exits `rep outsb` takes depends on the host's emulator; the bytes must arrive intact,
    and never in more exits than bytes."""
    r = run_program(builtin("console-rep"), device=kvm_device)
    assert r.text == MSG
    assert 1 <= r.exits["IO"] <= 1024 and r.exits["HLT"] == 1


def test_hypercall_and_debug_exit_details(kvm_device: str) -> None:
    r = run_program(builtin("console-hypercall"), device=kvm_device)
    assert r.hypercalls == 1 and r.io_ports == {0x510: 1}
    d = run_program(builtin("debug-exit"), device=kvm_device)
    assert d.stop == "debug-exit" and d.exit_value == 7


def test_kernel_stats_from_the_real_stats_fd(kvm_device: str) -> None:
    """The stats-fd parser on the live kernel: names present, the kernel counts at least what the VMM saw,
    and its own mmio_exits counter agrees exactly with the VMM's MMIO count."""
    r = run_program(builtin("mmio", 500), device=kvm_device)
    assert r.kernel_stats is not None, r.kernel_stats_source
    assert r.kernel_stats_source.startswith("KVM_GET_STATS_FD (kvm-")
    assert r.kernel_stats["exits"] >= r.total_exits == 501
    assert r.kernel_stats["mmio_exits"] == 500
    assert r.kernel_stats["halt_exits"] == 1


def test_stats_layout_of_a_fresh_vcpu(kvm_device: str, no_leaks: None) -> None:
    with Kvm(kvm_device) as kvm, kvm.create_vm() as vm, vm.create_vcpu() as vcpu:
        fd = vcpu.stats_fd()
        assert fd is not None
        stats = StatsFd(fd)
        try:
            names = {d.name for d in stats.layout.descriptors}
            assert {"exits", "io_exits", "mmio_exits", "halt_exits", "insn_emulation", "hypercalls"} <= names
            assert stats.layout.id == f"kvm-{os.getpid()}/vcpu-0"
            snap = stats.snapshot()
            assert snap["exits"] == 0 and snap["halt_exits"] == 0
        finally:
            stats.close()


def test_program_from_asm_file(kvm_device: str, tmp_path: Path, no_leaks: None) -> None:
    src = tmp_path / "three.asm"
    src.write_text(
        "; three bytes, three exits\n mov dx, 0x3f8\n mov al, 'a'\n mov cx, 3\n"
        "l: out dx, al\n inc al\n loop l\n hlt\n"
    )
    r = run_program(from_file(src), device=kvm_device)
    assert dict(r.exits) == {"IO": 3, "HLT": 1}
    assert r.text == "abc"


def test_program_from_hex_file(kvm_device: str, tmp_path: Path) -> None:
    src = tmp_path / "hello.hex"
    src.write_text("ba f8 03  ; mov dx, 0x3f8\nb0 34     ; mov al, '4'\nee        ; out dx, al\nf4 # hlt\n")
    r = run_program(from_file(src), device=kvm_device)
    assert dict(r.exits) == {"IO": 1, "HLT": 1}
    assert r.text == "4"


def test_triple_fault_is_a_guest_fault(kvm_device: str, no_leaks: None) -> None:
    with pytest.raises(GuestFault, match=r"SHUTDOWN.*triple fault") as info:
        run_program(builtin("triple-fault"), device=kvm_device)
    assert dict(info.value.run.exits) == {"SHUTDOWN": 1}
    assert info.value.exit_code == 4


def test_runaway_guest_stops_at_the_wall_limit(kvm_device: str, no_leaks: None) -> None:
    with pytest.raises(GuestLimit, match=r"still running after 0\.3 s") as info:
        run_program(builtin("runaway"), device=kvm_device, limits=Limits(wall_s=0.3))
    assert info.value.run.total_exits == 0
    assert info.value.run.signals >= 1


def test_exit_limit(kvm_device: str, no_leaks: None) -> None:
    with pytest.raises(GuestLimit, match="limit of 50 exits") as info:
        run_program(builtin("out", 1000), device=kvm_device, limits=Limits(max_exits=50))
    assert info.value.run.total_exits == 50


def test_bad_hypercall_address_is_a_guest_fault(kvm_device: str, tmp_path: Path, no_leaks: None) -> None:
    src = tmp_path / "bad.asm"
    src.write_text(" mov eax, 0xfffff0\n mov dx, 0x510\n out dx, eax\n hlt\n")
    with pytest.raises(GuestFault, match="outside guest RAM"):
        run_program(from_file(src), device=kvm_device)


def test_debugfs_is_labelled_either_way(kvm_device: str) -> None:
    """debugfs is optional: mounted and readable gives numbers, otherwise a reason (never an error)."""
    with Kvm(kvm_device) as kvm, kvm.create_vm() as vm:
        values, source = read_debugfs(vm.fd)
    if values is None:
        assert "not mounted" in source or "not permitted" in source or "does not exist" in source
    else:
        assert "exits" in values and source.startswith("debugfs ")
