"""Parsing the probes' output and comparing backends (no container: fixed outputs written by hand)."""

from vmlab.osvirt.box import BoxRun
from vmlab.osvirt.probes import alloc_script, compare, probe_experiment

# What the model box printed on this host (pid 1, own hostname, root and /proc, lo only, Docker's
# capability set a80425fb, a seccomp filter, a one-id uid map).
BOX = """pid=1
pids=1
hostname=box-558
mounts=2
host_file=unreachable
rootfs=tiny
netifs=lo,
cap_eff=00000000a80425fb
seccomp=2
no_new_privs=1
uid=0
uid_map=0 0 1
priv=denied
mkdir=Operation not permitted
"""
DOCKER = BOX.replace("mounts=2", "mounts=28").replace("uid_map=0 0 1", "uid_map=0 0 4294967295")
DOCKER = DOCKER.replace("mkdir=Operation not permitted", "mkdir=allowed").replace("box-558", "b624359ebeb4")


def test_probe_experiment_counts_and_values() -> None:
    exp = probe_experiment(BoxRun(0, BOX, "", 1), "box")
    # a80425fb = bits 0,1,3,4,5,6,7,8,10,13,18,27,29,31: Docker's 14 default capabilities
    assert exp.counts["cap_count"] == 14
    assert exp.counts["pid"] == 1 and exp.counts["uid"] == 0 and exp.counts["hostname_n"] == 558
    assert exp.values["userns"] is True and exp.values["netifs"] == "lo,"


def test_full_uid_map_is_no_user_namespace_and_foreign_hostname_has_no_number() -> None:
    exp = probe_experiment(BoxRun(0, DOCKER, "", 1), "docker")
    assert exp.values["userns"] is False
    assert "hostname_n" not in exp.counts


def test_missing_probes_leave_counts_out() -> None:
    exp = probe_experiment(BoxRun(125, "pid=1\n", "box: failed", 1), "box")
    assert exp.counts == {"exit_code": 125, "left_cgroups": 0, "pid": 1}
    assert exp.values["mkdir"] is None and exp.values["userns"] is False


def test_compare_names_the_differing_probes() -> None:
    group = {"box": probe_experiment(BoxRun(0, BOX, "", 1), "box")}
    group["docker"] = probe_experiment(BoxRun(0, DOCKER, "", 1), "docker")
    out = compare(group)
    # by construction DOCKER differs in mounts, the uid map and mkdir; the hostname is not compared
    assert out.counts == {"differ_docker": 3}
    assert out.values["differ_docker"] == "mounts,userns,mkdir"


def test_alloc_script_doubles_to_at_least_the_bytes() -> None:
    # 2 x 64 MiB = 2^27 bytes: 27 doublings of a 1-byte string
    assert "-lt 27 " in alloc_script(2 * 64 << 20)
    assert "-lt 28 " in alloc_script((2 * 64 << 20) + 1)
