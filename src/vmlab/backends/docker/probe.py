"""The Docker runtimes' health: what `vmlab doctor` shows and a step's `requires` checks for `docker`
and `sandbox` (docker-runsc). Probes never raise; the Docker SDK is imported only when probed, so a
host without it gets a row saying so.

`runsc_registration` is the one check that gVisor is registered with Docker: the sandbox probe and the
docker-runsc runtime (when it opens) both ask it.
"""

from __future__ import annotations

from typing import Any

from vmlab.errors import BackendError, NotAvailable
from vmlab.paths import system_tool
from vmlab.runtime_registry import VM_EXTRA_FIX, Health

OCI_RUNTIME = "runsc"  # the name set-up registers with Docker
RUNSC_FIX = "make setup (installs runsc and registers it in /etc/docker/daemon.json)"


def runsc_registration(client: Any) -> list[str]:
    """runsc's runtimeArgs as dockerd has it registered; NotAvailable when dockerd has no runsc."""
    from vmlab.backends.docker.errors import DOCKER_ERRORS, translate

    try:
        runtimes = client.info().get("Runtimes") or {}
    except DOCKER_ERRORS as e:
        raise translate(e, "asking dockerd for its runtimes") from e
    if OCI_RUNTIME not in runtimes:
        raise NotAvailable("Docker has no runtime named runsc (gVisor is not registered)", hint=RUNSC_FIX)
    return list(runtimes[OCI_RUNTIME].get("runtimeArgs") or [])


def probe_docker() -> Health:
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        return Health("fail", "the docker SDK is not installed", VM_EXTRA_FIX)
    try:
        client = docker.from_env(timeout=5)
        info = client.info()
        version = client.version()
        client.close()
    except DockerException as e:
        first = str(e).splitlines()[0][:120]
        fix = "make setup (starts dockerd)"
        if "Permission denied" in str(e):
            fix = "add yourself to group docker (make setup does it), then log in again"
        return Health("fail", f"daemon not reachable: {first}", fix)
    data = {
        "server": version.get("Version"),
        "api": version.get("ApiVersion"),
        "cgroup_version": info.get("CgroupVersion"),
        "cgroup_driver": info.get("CgroupDriver"),
    }
    return Health("ok", f"Docker {data['server']}, cgroup v{data['cgroup_version']}", data=data)


def probe_sandbox() -> Health:
    """gVisor registered with Docker as the runtime `runsc` (what `vmlab up --kind sandbox` uses)."""
    if system_tool("runsc") is None:
        return Health("fail", "runsc (gVisor) is not installed", RUNSC_FIX)
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        return Health("fail", "the docker SDK is not installed", VM_EXTRA_FIX)
    try:
        client = docker.from_env(timeout=5)
        try:
            args = runsc_registration(client)
        finally:
            client.close()
    except NotAvailable as e:
        return Health("fail", e.message, e.hint or RUNSC_FIX)
    except (BackendError, DockerException, OSError) as e:
        return Health("fail", f"Docker not reachable: {str(e).splitlines()[0][:120]}", RUNSC_FIX)
    data: dict[str, Any] = {"runtime_args": args}
    if not any(a.startswith("--debug-log=") for a in args):
        return Health(
            "warn", "runsc registered without --debug-log: sandbox traps are not counted", RUNSC_FIX, data
        )
    from vmlab.host.distro import run_quiet
    from vmlab.host.versions import runsc_version_note

    version = run_quiet(["runsc", "--version"]).splitlines()[:1]
    data["version"] = version[0] if version else None
    if version and (note := runsc_version_note(version[0])):
        return Health("warn", f"{' '.join(args)}; {note}", "make setup", data)
    return Health("ok", "gVisor (runsc) is a Docker runtime: " + " ".join(args), data=data)
