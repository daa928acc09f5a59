"""Which packages this distribution release offers for what the kit needs, resolved from apt's lists.

Set-up (scripts/setup-host.sh, before any venv exists) runs this file with the system python3:
`python3 src/vmlab/host/distro.py packages` prints the resolved package names, one a line. The names
differ between releases (Debian 12: openjdk-17 and docker.io with the CLI; Debian 13: openjdk-21 and
the CLI split into docker-cli; Ubuntu 24.04: no runsc in main), so nothing here names a version: the
pure functions choose from apt-cache's text, and `vmlab doctor` shows what they chose. Standard library
only, no vmlab imports: it must run from a bare checkout.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

# What a choice falls back to when apt's lists say nothing (no apt, lists not fetched yet).
JDK_FALLBACK = "openjdk-17-jdk-headless"
LINUX_SOURCE_META = "linux-source"
# Debian's kernel meta package (what the tiny image is built from), then Ubuntu's.
KERNEL_METAS = ("linux-image-amd64", "linux-image-generic")
JDK_RE = re.compile(r"^openjdk-(\d+)-jdk-headless$")

# Run with an argv, returns stdout ("" when the command is missing or fails): faked in unit tests.
Runner = Callable[[list[str]], str]


def run_quiet(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return ""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return p.stdout if p.returncode == 0 else ""


def os_release(text: str) -> dict[str, str]:
    """/etc/os-release as a dict (values unquoted)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip().strip('"').strip("'")
    return out


def newest_jdk(search_output: str) -> str | None:
    """The headless JDK with the highest feature release among `apt-cache search --names-only` lines
    ("openjdk-21-jdk-headless - OpenJDK Development Kit (JDK) (headless)")."""
    best: tuple[int, str] | None = None
    for line in search_output.splitlines():
        m = JDK_RE.match(line.split(" - ", 1)[0].strip())
        if m and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), m.group(0))
    return best[1] if best else None


def has_candidate(policy_output: str) -> bool:
    """`apt-cache policy PKG` names a version apt would install (not "(none)", not empty)."""
    m = re.search(r"^\s*Candidate:\s*(\S+)", policy_output, re.M)
    return m is not None and m.group(1) != "(none)"


def depends_on(depends_output: str, prefix: str) -> str | None:
    """The first dependency starting with `prefix` in `apt-cache depends` output (a meta package's
    target: linux-source -> linux-source-6.12)."""
    for line in depends_output.splitlines():
        m = re.match(r"\s*\|?Depends:\s*(\S+)", line)
        if m and m.group(1).startswith(prefix):
            return m.group(1)
    return None


@dataclass
class Choices:
    """What set-up installs where the release decides, and why (for `vmlab doctor` and set-up's log)."""

    jdk: str
    docker: list[str]
    linux_source: str | None
    runsc: bool
    kernel_meta: str | None = None  # the kernel meta package in the archive (tiny uses Debian's)
    notes: list[str] = field(default_factory=list)

    def packages(self) -> list[str]:
        out = [self.jdk, *self.docker]
        if self.runsc:
            out.append("runsc")
        return out


def resolve(run: Runner = run_quiet) -> Choices:
    """The choices on this host, from apt-cache (which reads the lists `apt-get update` fetched)."""
    notes: list[str] = []
    jdk = newest_jdk(run(["apt-cache", "search", "--names-only", r"^openjdk-[0-9]+-jdk-headless$"]))
    if jdk is None:
        jdk = JDK_FALLBACK
        notes.append(f"apt knows no openjdk-N-jdk-headless: assuming {jdk}")
    docker = ["docker.io"]
    # Debian 13 moved /usr/bin/docker out of docker.io into docker-cli; Debian 12's docker.io has it.
    if has_candidate(run(["apt-cache", "policy", "docker-cli"])):
        docker.append("docker-cli")
    runsc = has_candidate(run(["apt-cache", "policy", "runsc"]))
    if not runsc:
        notes.append(
            "runsc (gVisor) is not in this release's archive: the sandbox kind needs gVisor's apt "
            "repository (docs/host-facts.md)"
        )
    src = depends_on(run(["apt-cache", "depends", LINUX_SOURCE_META]), "linux-source-")
    kernel_meta = next(
        (m for m in KERNEL_METAS if has_candidate(run(["apt-cache", "policy", m]))),
        None,
    )
    return Choices(
        jdk=jdk, docker=docker, linux_source=src, runsc=runsc, kernel_meta=kernel_meta, notes=notes
    )


def main(argv: list[str]) -> int:
    if argv[1:] == ["packages"]:
        print("\n".join(resolve().packages()))
        return 0
    if argv[1:] == ["notes"]:
        c = resolve()
        print(f"JDK {c.jdk}; Docker {' + '.join(c.docker)}; kernel source {c.linux_source or 'none'}")
        for n in c.notes:
            print(n)
        return 0
    print(f"usage: {argv[0]} packages|notes", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
