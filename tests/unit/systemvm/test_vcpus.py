"""The vcpus step's pure parts: QEMU's threading from thread names, the workload's output, the counts
measured on a host, and the experiment's figures from hand-made samples."""

from __future__ import annotations

import pytest

from vmlab.errors import BackendError
from vmlab.systemvm.vcpus import _Point, experiment_of, parse_elapsed, threading_of, vcpu_counts, workload


def test_multi_threaded_tcg_has_a_thread_per_vcpu() -> None:
    # as /proc/PID/task/*/comm read for a 2-vCPU guest here (libvirt sets debug-threads=on)
    names = ["CPU 0/TCG", "CPU 1/TCG", "IO mon_iothread", "qemu-system-x86", "qemu-system-x86"]
    assert threading_of(names) == ("multi", 2)


def test_single_threaded_tcg_names_one_thread_for_all() -> None:
    assert threading_of(["ALL CPUs/TCG", "qemu-system-x86"]) == ("single", 1)


def test_kvm_vcpu_threads() -> None:
    assert threading_of(["CPU 0/KVM", "CPU 1/KVM", "CPU 2/KVM", "qemu-system-x86"]) == ("kvm", 3)


def test_unnamed_threads_are_unknown() -> None:
    assert threading_of(["qemu-system-x86", "qemu-system-x86"]) == ("unknown", 0)


def test_elapsed_from_two_uptimes() -> None:
    assert parse_elapsed("123.45 128.46\n") == 5.01


def test_garbage_output_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="not two uptimes"):
        parse_elapsed("sh: syntax error\n")


def test_counts_above_the_host_cpus_are_left_out_and_1_is_always_measured() -> None:
    assert vcpu_counts([2, 4, 8], host_cpus=2) == ([1, 2], [4, 8])
    assert vcpu_counts([1, 2, 4], host_cpus=8) == ([1, 2, 4], [])


def test_the_workload_starts_its_loops_in_the_background_and_waits() -> None:
    cmd = workload(3, 1000)
    assert cmd.count("&") == 1 and "wait" in cmd and "-lt 3" in cmd and "-lt 1000" in cmd


def test_speedup_is_the_one_cpu_median_over_each_count() -> None:
    one = _Point(1, elapsed=[4.0, 4.2, 4.4], wall=[4.1, 4.3, 4.5], boot_s=2.0, guest_cpus=1)
    two = _Point(2, elapsed=[2.2, 2.0, 2.4], wall=[2.3, 2.1, 2.5], boot_s=2.5, guest_cpus=2)
    one.threading, one.vcpu_threads = "multi", 1
    two.threading, two.vcpu_threads = "multi", 2
    exp = experiment_of("vm", "libvirt", "tcg", "no vmx", [one, two], 2, [])
    # medians 4.2 and 2.2: 4.2 / 2.2 = 1.909..., efficiency 0.954...
    assert exp.values["speedup:2"] == 1.909 and exp.values["efficiency:2"] == 0.955
    assert exp.values["speedup:1"] == 1.0
    assert exp.values["mttcg"] is True and exp.values["vcpus"] == "1,2"
    assert exp.counts == {
        "loops": 2,
        "cpus_seen:1": 1,
        "vcpu_threads:1": 1,
        "cpus_seen:2": 2,
        "vcpu_threads:2": 2,
    }
    assert exp.series["elapsed_s:2"] == [2.2, 2.0, 2.4]
