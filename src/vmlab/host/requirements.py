"""What a lab step `requires`, probed before the step runs.

An unmet requirement makes the step `skipped` with the reason and the fix, never a crash. Device probes
are doctor's own (one probe per capability); a tool the lab declares (`[tools.NAME]` in its lab.toml,
vmlab.host.tools) is its program on PATH, the fix naming its package; a runtime (docker, sandbox,
libvirt, a plug-in) is probed by its own probe from the runtime registry; any other name is a program
looked up on PATH plus the system directories Debian keeps out of a normal user's PATH.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from vmlab.host import doctor
from vmlab.host.kernel_features import cgroup_write, userns
from vmlab.host.tools import ToolSpec
from vmlab.host.unmet import Unmet as Unmet  # re-exported: what every caller names
from vmlab.paths import system_tool

Probe = Callable[[], Unmet | None]


def _tool(name: str, program: str, package: str) -> Probe:
    def probe() -> Unmet | None:
        if system_tool(program) is None:
            return Unmet(name, f"{program} is not installed", f"apt-get install {package} (or make setup)")
        return None

    return probe


def _declared(tool: ToolSpec) -> Probe:
    def probe() -> Unmet | None:
        if tool.path() is None:
            return Unmet(tool.name, f"{tool.program} is not installed", tool.install_hint())
        return None

    return probe


def _from_doctor(name: str, row: Callable[[], doctor.Row]) -> Probe:
    def probe() -> Unmet | None:
        found = row()
        if found.status == "fail":
            return Unmet(name, found.detail, found.fix)
        return None

    return probe


def _root() -> Unmet | None:
    if os.geteuid() != 0:
        return Unmet("root", "this step reads host-wide counters only root may read", "run it as root")
    return None


REQUIREMENTS: dict[str, Probe] = {
    "kvm": _from_doctor("kvm", doctor.probe_kvm),
    "root": _root,
    "strace": _tool("strace", "strace", "strace"),
    "runsc": _tool("runsc", "runsc", "runsc"),
    "userns": userns,
    "cgroup-write": cgroup_write,
}


def _runtime(name: str) -> Probe | None:
    """The probe of the runtime a step names (by its requirement name or its runtime name)."""
    from vmlab.runtime_registry import probe, registry

    for runtime, info in registry().items():
        if name in (info.requirement_name, runtime):

            def found(runtime: str = runtime) -> Unmet | None:
                h = probe(runtime)
                return Unmet(name, h.detail, h.fix) if h.status == "fail" else None

            return found
    return None


def probe_for(name: str, tools: Mapping[str, ToolSpec] | None = None) -> Probe:
    """A named probe, then a tool the lab declares (`tools`), then a runtime's own probe, else: NAME is
    a program that must be on PATH (or in /usr/sbin, /sbin)."""
    declared = (tools or {}).get(name)
    return (
        REQUIREMENTS.get(name)
        or (_declared(declared) if declared is not None else None)
        or _runtime(name)
        or _tool(name, name, f"the package that provides {name}")
    )


def unmet(
    names: list[str],
    cache: dict[str, Unmet | None] | None = None,
    tools: Mapping[str, ToolSpec] | None = None,
) -> list[Unmet]:
    """The requirements among `names` this host does not meet; `tools` are the lab's declared tools;
    `cache` spares re-probing per step."""
    found: list[Unmet] = []
    for name in names:
        if cache is not None and name in cache:
            result = cache[name]
        else:
            result = probe_for(name, tools)()
            if cache is not None:
                cache[name] = result
        if result is not None:
            found.append(result)
    return found
