"""Each daemon fault is named for what it is: the one translation per runtime, on the exceptions the
libraries raise (as built by hand here; the real faults are injected in tests/integration)."""

from __future__ import annotations

import pytest
import requests

from vmlab.backends.docker import backend as db
from vmlab.backends.docker import errors as de
from vmlab.backends.libvirt import adapter as lv
from vmlab.errors import BackendError


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (
            requests.ReadTimeout(
                "UnixHTTPConnectionPool(host='localhost', port=None): Read timed out. (read timeout=30)"
            ),
            de.DaemonSlow,
        ),
        (
            requests.ConnectionError(
                "('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))"
            ),
            de.DaemonGone,
        ),
        (requests.ConnectionError("Connection refused"), de.DaemonGone),
    ],
)
def test_docker_faults_tell_a_busy_daemon_from_a_gone_one(exc: Exception, kind: type) -> None:
    err = de.translate(exc, "listing containers failed")
    assert type(err) is kind
    if kind is de.DaemonSlow:
        assert (
            err.message
            == "listing containers failed: dockerd did not answer within 30 s (it runs, but is busy)"
        )


def test_a_timeout_or_a_dropped_connection_is_tried_again() -> None:
    calls: list[int] = []

    def busy_then_fine() -> str:
        calls.append(1)
        if len(calls) < de.SLOW_ATTEMPTS:
            raise requests.ReadTimeout("Read timed out. (read timeout=2)")
        return "ok"

    assert de.call(busy_then_fine, "x") == "ok" and len(calls) == de.SLOW_ATTEMPTS
    calls.clear()

    def refused() -> str:
        calls.append(1)
        raise requests.ConnectionError("Connection refused")

    with pytest.raises(de.DaemonGone):
        de.call(refused, "x")
    assert len(calls) == de.SLOW_ATTEMPTS  # asked again, briefly, before it is called gone
    calls.clear()

    def dropped_once() -> str:
        calls.append(1)
        if len(calls) == 1:  # a busy dockerd dropping a pooled keep-alive connection
            raise requests.ConnectionError("('Connection aborted.', RemoteDisconnected('Remote end closed'))")
        return "ok"

    assert de.call(dropped_once, "x") == "ok" and len(calls) == 2


class _LibvirtError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def get_error_message(self) -> str:
        return self.message


@pytest.mark.parametrize(
    ("message", "gone"),
    [
        ("internal error: client socket is closed", True),
        ("Cannot recv data: Connection reset by peer", True),
        ("End of file while reading data: Input/output error", True),
        ("Requested operation is not valid: domain is not running", False),
    ],
)
def test_libvirt_faults_name_the_daemon_only_when_it_is_gone(message: str, gone: bool) -> None:
    err = lv.translate(_LibvirtError(message), "stopping the domain failed")
    assert isinstance(err, lv.DaemonGone) is gone
    if gone:
        assert err.one_line() == (
            "stopping the domain failed: libvirtd stopped answering (it was stopped, killed or restarted) "
            "(fix: start libvirtd again (make setup, or libvirtd -d as root))"
        )
    else:
        assert err.message == f"stopping the domain failed: {message}"


def test_a_virtlogd_that_is_gone_is_named() -> None:
    msg = "Failed to connect socket to '/run/libvirt/virtlogd-sock': Connection refused"
    err = lv.translate(_LibvirtError(msg), "starting vmlab-x failed")
    assert isinstance(err, lv.DaemonGone)
    assert err.one_line() == (
        f"starting vmlab-x failed: virtlogd does not answer ({msg}) "
        "(fix: start virtlogd again (make setup, or virtlogd -d as root))"
    )


def test_the_cgroups_of_an_ended_qemu_are_removed_deepest_first(tmp_path: object) -> None:
    from pathlib import Path

    from vmlab.backends.libvirt.recovery import domain_cgroups, remove_cgroups

    root = Path(str(tmp_path))
    dom = "vmlab-20261204-000000-abcdef-g1"
    for hierarchy in ("cpu", "memory", "unified"):
        for sub in ("vcpu0", "emulator"):
            (root / hierarchy / "machine" / f"qemu-7-{dom}.libvirt-qemu" / sub).mkdir(parents=True)
    other = root / "cpu" / "machine" / "qemu-8-vmlab-other-g2.libvirt-qemu"
    other.mkdir()
    # a cgroup that still holds a process cannot be removed (here: a file rmdir cannot take)
    (root / "memory" / "machine" / f"qemu-7-{dom}.libvirt-qemu" / "emulator" / "busy").write_text("1")
    assert len(domain_cgroups(dom, root)) == 3
    left = remove_cgroups(dom, root)
    assert left == [root / "memory" / "machine" / f"qemu-7-{dom}.libvirt-qemu"]
    assert not (root / "cpu" / "machine" / f"qemu-7-{dom}.libvirt-qemu").exists()
    assert not (root / "unified" / "machine" / f"qemu-7-{dom}.libvirt-qemu").exists()
    assert other.is_dir()  # another domain's is never touched


def _api_error(status: int, explanation: str) -> Exception:
    """docker's APIError as the SDK builds it from dockerd's answer (a requests.HTTPError too)."""
    import docker.errors

    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError(f"{status} Server Error", response=response, explanation=explanation)


# dockerd's answers, copied from the host while its containerd was killed (Docker 20.10, containerd 1.6)
CONTAINERD_ANSWERS = [
    'connection error: desc = "transport: Error while dialing dial unix '
    '/var/run/docker/containerd/containerd.sock: connect: connection refused": unavailable',
    "failed to retrieve labels: transport is closing: unavailable",
    "connection closed: unavailable",
    "Could not kill running container 0123, cannot remove - tried to kill container, but did not "
    "receive an exit event",
]


@pytest.mark.parametrize("explanation", CONTAINERD_ANSWERS)
def test_a_gone_containerd_is_named_not_dockerd(explanation: str) -> None:
    err = de.translate(_api_error(500, explanation), "exec in c failed")
    assert type(err) is de.ContainerdGone and err.exit_code == 4
    assert err.message.startswith("exec in c failed: containerd, which runs dockerd's containers")
    assert "dockerd does not answer" not in err.one_line()


def test_an_answer_from_dockerd_is_never_a_dockerd_that_is_gone() -> None:
    """APIError is a requests.RequestException: an answer that merely mentions a refused connection
    (runsc's control socket, a 404) is dockerd answering, so it is neither retried nor called gone."""
    calls: list[int] = []

    def not_found() -> None:
        calls.append(1)
        raise _api_error(404, "No such container: 0123")

    with pytest.raises(BackendError) as info:
        de.call(not_found, "x")
    assert type(info.value) is BackendError and len(calls) == 1
    assert info.value.message == "x: No such container: 0123"
    sandbox = _api_error(500, "OCI runtime exec failed: urpc: dial: Connection refused")
    assert not isinstance(de.translate(sandbox, "x"), de.DaemonGone)


def test_a_removal_waits_for_containerd_then_names_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    tries: list[int] = []

    class Api:
        def remove_container(self, resource: str, force: bool, v: bool) -> None:
            tries.append(1)
            raise _api_error(500, CONTAINERD_ANSWERS[-1])  # rm -f with containerd gone

    class Client:
        api = Api()

    monkeypatch.setattr(db.time, "sleep", lambda s: None)
    with pytest.raises(de.ContainerdGone) as info:
        db.remove_container(Client(), "vmlab-x-c", wait_s=0.0)
    assert len(tries) == 1
    assert info.value.hint is not None and info.value.hint.endswith("then: docker rm -f vmlab-x-c")
    tries.clear()

    class Back:  # containerd back at the third try: the container goes, no error
        def remove_container(self, resource: str, force: bool, v: bool) -> None:
            tries.append(1)
            if len(tries) < 3:
                raise _api_error(500, CONTAINERD_ANSWERS[0])

    Client.api = Back()  # type: ignore[assignment]
    db.remove_container(Client(), "vmlab-x-c", wait_s=60.0)
    assert len(tries) == 3


def test_only_orphaned_empty_sentry_logs_of_this_start_are_removed(tmp_path: object) -> None:
    """A Sentry killed as it started leaves an empty log naming nothing: removed when no process
    holds it open and it is newer than the start; a log another Sentry writes (held open), one with
    content, or an older one stays. Real files and this process's own open file, no mocks."""
    import os
    import time
    from pathlib import Path

    from vmlab.backends.docker.sentry import remove_orphan_empty_logs

    if os.geteuid() != 0:
        pytest.skip("only root sees other processes' open files, so only root removes these logs")
    folder = Path(str(tmp_path))
    old = folder / "runsc.log.1.boot.txt"
    old.touch()
    os.utime(old, (time.time() - 600, time.time() - 600))
    since = time.time() - 1
    orphan, held, written = (folder / f"runsc.log.{n}.boot.txt" for n in (2, 3, 4))
    orphan.touch()
    written.write_text("I1207 Args: [runsc-sandbox ... abc]\n")
    with held.open("w"):  # a Sentry starting right now holds its log open
        removed = remove_orphan_empty_logs(folder, since)
    assert removed == [orphan]
    assert sorted(p.name for p in folder.iterdir()) == [old.name, held.name, written.name]
