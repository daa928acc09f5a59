"""Versions of the tools behind the figures, read without needing any daemon.

A lab names the tools it uses (`[lab] tools = [...]`); the report records just those. A tool the lab
declares (`[tools.NAME]`, vmlab.host.tools) is read as it says; the runtimes' and the host's own tools
are read as TOOLS says here; any other NAME as the first version string `NAME --version` prints.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterable

from vmlab.host.tools import NUMBER as _NUMBER
from vmlab.host.tools import ToolSpec


def tool_version(argv: list[str], pattern: str = _NUMBER) -> str | None:
    """First version-looking string a tool prints, or None when absent or silent."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(pattern, p.stdout + p.stderr)
    return m.group(1) if m else None


# The runsc releases whose Sentry debug log (the strace lines backends/docker/runsc.py counts) was
# captured and tested: Debian 12's and Debian 13's.
KNOWN_RUNSC = ("20221219", "20240729")


def runsc_version_note(version_output: str) -> str | None:
    """One line when runsc (`runsc --version`: "runsc version 0.0~20240729.0" or "release-20240729.0")
    is outside the releases whose debug log the kit was tested on; None when known or unreadable."""
    m = re.search(r"(20\d{6})", version_output)
    if not m or m.group(1) in KNOWN_RUNSC:
        return None
    return (
        f"runsc {m.group(1)} is outside the releases whose debug log this kit knows "
        f"({', '.join(KNOWN_RUNSC)}): a sandbox trap count of 0 may be a log format change"
    )


def _pkg(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cmd(*argv: str, pattern: str = _NUMBER) -> Callable[[], str | None]:
    return lambda: tool_version(list(argv), pattern)


# The host's and the runtimes' tools (no lab's: a lab declares its own in lab.toml): name -> how to
# read its version, where `NAME --version` is not the way (or NAME is no program).
TOOLS: dict[str, Callable[[], str | None]] = {
    "qemu": _cmd("qemu-system-x86_64", "--version"),
    "libvirt": _cmd("libvirtd", "--version"),
    "libvirt_python": lambda: _pkg("libvirt-python"),
    "docker": _cmd("dockerd", "--version"),
    "docker_sdk": lambda: _pkg("docker"),
    "runsc": _cmd("runsc", "--version", pattern=r"runsc version (\S+)"),
    "strace": _cmd("strace", "-V"),
    "perf": _cmd("perf", "--version"),
}

DEFAULT_TOOLS = ("qemu", "libvirt", "libvirt_python", "docker", "docker_sdk")


def declared_version(tool: ToolSpec) -> str | None:
    """A lab's tool read as its lab.toml says; "present" for one whose version is not read."""
    if tool.path() is None:
        return None
    if not tool.version:
        return "present"
    return tool_version(list(tool.version), tool.pattern)


_SEEN: dict[tuple[str, ToolSpec | None], str | None] = {}


def _version_of(name: str, declared: ToolSpec | None = None) -> str | None:
    """The lab's declared way, else a known tool's own probe, else the first version string
    `NAME --version` prints; each read once per process."""
    key = (name, declared)
    if key not in _SEEN:
        if declared is not None:
            _SEEN[key] = declared_version(declared)
        else:
            _SEEN[key] = (TOOLS.get(name) or _cmd(name, "--version"))()
    return _SEEN[key]


def tool_versions(
    names: Iterable[str] = DEFAULT_TOOLS, declared: Iterable[ToolSpec] = ()
) -> dict[str, str | None]:
    """The versions of `names`, a name among `declared` (the lab's tools) read as the lab says."""
    by_name = {t.name: t for t in declared}
    return {n: _version_of(n, by_name.get(n)) for n in names}
