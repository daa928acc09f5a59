"""The tiny container under Docker for real: ladder, exec, isolation, labels, stats."""

from __future__ import annotations

from typing import Any

import pytest

from vmlab.backends.base import CONTAINER_STAGES

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_ladder_has_every_stage_in_order(shared_container: Any) -> None:
    assert tuple(shared_container.ladder) == CONTAINER_STAGES
    stamps = list(shared_container.ladder.values())
    assert stamps == sorted(stamps)


def test_exec_output_exit_code_and_same_userspace(shared_container: Any, tiny_image: Any) -> None:
    res = shared_container.exec(["cat", "/proc/1/cgroup"]).check()
    assert shared_container.container.id in res.stdout
    assert shared_container.exec("exit 5").rc == 5
    release = shared_container.exec(["cat", "/etc/vmlab/release"]).check().stdout
    assert f"digest={tiny_image.digest}" in release  # the same rootfs as the guest


def test_no_network_unless_published(shared_container: Any) -> None:
    nets = shared_container.exec(["ls", "/sys/class/net"]).check().stdout.split()
    assert nets == ["lo"]


def test_labels_identify_the_container(shared_container: Any) -> None:
    labels = shared_container.container.labels
    assert labels["vmlab.name"] == "shared-c" and labels["vmlab.lab"] == "tests" and labels["vmlab.run_id"]


def test_stats_report_cgroup_memory_and_init_pid(shared_container: Any) -> None:
    stats = shared_container.stats()
    assert stats["pid"] == shared_container.pid() and stats["pid"] > 1
    assert stats["cgroup_memory"]["usage"] > 0
    assert stats["init_process"]["rss"] > 0


def test_destroy_is_idempotent(container_factory: Any) -> None:
    from vmlab.backends import get_backend

    inst = container_factory("gone")
    inst.destroy()
    inst.destroy()
    assert all(r.name != "gone" for r in get_backend("container").list_owned())


def test_published_ports_bind_to_loopback_only(container_factory: Any) -> None:
    from vmlab.backends import get_backend

    inst = container_factory("pub", publish_ports=(8080,))
    assert "eth0" in inst.exec(["ls", "/sys/class/net"]).check().stdout.split()
    record = next(r for r in get_backend("container").list_owned() if r.name == "pub")
    assert record.address.startswith("127.0.0.1:") and record.address.endswith("->8080/tcp")
