"""Real guests and containers for integration tests: the tiny image is built once per session (cached
in the test VMLAB_HOME), and factories always destroy what they create, dumping the console on failure.

The test home defaults to /var/tmp/vmlab-test (VMLAB_TEST_HOME overrides): not under pytest's 0700
tmp dirs, because libvirt's QEMU user must read the kernel and write the console log (docs/host-facts.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vmlab.backends.base import InstanceSpec
from vmlab.paths import new_run_id

TEST_HOME = Path(os.environ.get("VMLAB_TEST_HOME", "/var/tmp/vmlab-test"))


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the item so fixtures can tell whether their test failed."""
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{rep.when}", rep)


def _failed(request: pytest.FixtureRequest) -> bool:
    rep = getattr(request.node, "rep_call", None)
    return bool(rep is not None and rep.failed)


@pytest.fixture(scope="session")
def test_home() -> Iterator[Path]:
    """VMLAB_HOME for the whole integration session (0755 so QEMU can traverse it)."""
    TEST_HOME.mkdir(parents=True, exist_ok=True)
    os.chmod(TEST_HOME, 0o755)
    mp = pytest.MonkeyPatch()
    mp.setenv("VMLAB_HOME", str(TEST_HOME))
    yield TEST_HOME
    mp.undo()


@pytest.fixture(scope="session")
def docker_available() -> None:
    """Docker's own CLI must reach the daemon (a probe independent of vmlab's client code)."""
    from tests.conftest import probe_command, unavailable

    why = probe_command(["docker", "version", "--format", "{{.Server.Version}}"])
    if why is not None:
        unavailable("the Docker daemon", why)


@pytest.fixture(scope="session")
def tiny_image(test_home: Path) -> Any:
    """The tiny image, built once per session (a cache hit after the first session on a machine)."""
    from vmlab.images import build_image

    return build_image("tiny", progress=lambda m: print(f"[tiny image] {m}", file=sys.stderr))


Factory = Callable[..., Any]


def _factory(kind: str, request: pytest.FixtureRequest) -> Iterator[Factory]:
    """`kind` is a kind (its default runtime) or a runtime name."""
    from vmlab.backends import RUNTIMES, get_backend, open_runtime

    backend = open_runtime(kind) if kind in RUNTIMES else get_backend(kind)
    made: list[Any] = []
    run_id = new_run_id()

    def make(name: str, *, start: bool = True, ready: bool = True, **spec_kw: Any) -> Any:
        spec = InstanceSpec(name=name, run_id=run_id, lab="tests", **spec_kw)
        inst = backend.create(spec)
        made.append(inst)
        if start:
            inst.start()
            if ready:
                inst.wait_ready()
        return inst

    try:
        yield make
    finally:
        for inst in reversed(made):
            if _failed(request):
                tail = "\n".join(inst.console_tail(60))
                print(f"\n--- console of {inst.resource} ---\n{tail}\n--- end ---", file=sys.stderr)
            inst.destroy()
        backend.close()


@pytest.fixture
def guest_factory(
    libvirt_available: str, tiny_image: Any, request: pytest.FixtureRequest
) -> Iterator[Factory]:
    """make(name, **InstanceSpec fields) -> a booted LibvirtInstance, destroyed after the test."""
    yield from _factory("vm", request)


@pytest.fixture
def container_factory(
    docker_available: None, tiny_image: Any, request: pytest.FixtureRequest
) -> Iterator[Factory]:
    """make(name, **InstanceSpec fields) -> a ready DockerInstance, removed after the test."""
    yield from _factory("container", request)


@pytest.fixture(scope="module")
def shared_container(docker_available: None, tiny_image: Any) -> Iterator[Any]:
    from vmlab.backends import get_backend

    backend = get_backend("container")
    inst = backend.create(InstanceSpec(name="shared-c", run_id=new_run_id(), lab="tests"))
    try:
        inst.start()
        inst.wait_ready()
        yield inst
    finally:
        inst.destroy()
        backend.close()


def _runtime_params() -> list[Any]:
    """One parameter per runtime of the registry (plug-ins included), with the runtime's own markers.
    A runtime that serves normal users only (podman) is left out when the suite runs as root, where it
    could only skip: tests/integration/nonroot runs it as a throwaway student."""
    from vmlab.backends import registry

    root = os.geteuid() == 0
    return [
        pytest.param(name, marks=[getattr(pytest.mark, m) for m in info.test_marks], id=name)
        for name, info in registry().items()
        if info.as_root or not root
    ]


RUNTIME_PARAMS = _runtime_params()


def require_runtime(name: str) -> None:
    """Skip (fail under CI) unless the runtime's own test probes, commands independent of vmlab (the
    docker CLI, the docker CLI listing runsc among its runtimes, virsh on the suite's URI), succeed."""
    from tests.conftest import probe_command

    from vmlab.backends import runtime_info

    info = runtime_info(name)
    if not info.as_root and os.geteuid() == 0:
        unavailable(f"runtime {name}", "it serves normal users only", set_up_by_make_test=False)
    uri = ""
    for probe in info.test_probes:
        if any("{uri}" in a for a in (probe.what, *probe.argv)) and not uri:
            from vmlab.host.libvirt import default_uri

            uri = default_uri()
        why = probe_command([a.replace("{uri}", uri) for a in probe.argv])
        if why is not None:
            unavailable(probe.what.replace("{uri}", uri), why)


def unavailable(what: str, why: str, set_up_by_make_test: bool = True) -> None:
    from tests.conftest import unavailable as _unavailable

    _unavailable(what, why, set_up_by_make_test=set_up_by_make_test)


@pytest.fixture(scope="module", params=RUNTIME_PARAMS)
def runtime_instance(request: pytest.FixtureRequest, test_home: Path, tiny_image: Any) -> Iterator[Any]:
    """One ready instance per runtime of the registry, for a module of read-only tests; destroyed after."""
    from vmlab.backends import open_runtime

    name = str(request.param)
    require_runtime(name)
    failed_before = request.session.testsfailed
    backend = open_runtime(name)
    inst = backend.create(InstanceSpec(name=f"rt-{name.split('-')[-1]}", run_id=new_run_id(), lab="tests"))
    try:
        inst.start()
        inst.wait_ready()
        yield inst
    finally:
        if request.session.testsfailed > failed_before:
            print(
                f"\n--- console of {inst.resource} ---\n" + "\n".join(inst.console_tail(60)), file=sys.stderr
            )
        inst.destroy()
        backend.close()


@pytest.fixture(params=RUNTIME_PARAMS)
def runtime_factory(request: pytest.FixtureRequest, test_home: Path, tiny_image: Any) -> Iterator[Factory]:
    """make(name, **InstanceSpec fields) on each runtime in turn; everything destroyed after the test."""
    require_runtime(str(request.param))
    yield from _factory(str(request.param), request)
