"""Versions of the tools behind the figures, read without needing any daemon."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache


def tool_version(argv: list[str], pattern: str = r"(\d+\.\d+(?:\.\d+)?)") -> str | None:
    """First version-looking string a tool prints, or None when absent or silent."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(pattern, p.stdout + p.stderr)
    return m.group(1) if m else None


@cache
def tool_versions() -> dict[str, str | None]:
    from importlib import metadata

    def pkg(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "qemu": tool_version(["qemu-system-x86_64", "--version"]),
        "libvirt": tool_version(["libvirtd", "--version"]),
        "libvirt_python": pkg("libvirt-python"),
        "docker": tool_version(["dockerd", "--version"]),
        "docker_sdk": pkg("docker"),
        "valgrind": tool_version(["valgrind", "--version"]),
        "java": tool_version(["java", "-version"], r'version "([^"]+)"'),
    }
