"""Debian packages without installing them: resolve versions, `apt-get download`, `dpkg-deb -x`."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

from vmlab.errors import BackendError, NotAvailable


def run(argv: list[str], *, cwd: Path | None = None, timeout: float = 600) -> str:
    """Run a build tool; a missing tool or a failure becomes one clear error with the stderr tail."""
    if shutil.which(argv[0]) is None:
        raise NotAvailable(f"{argv[0]} is not installed (needed to build images)", hint="make setup")
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise BackendError(f"{' '.join(argv[:3])} did not finish within {timeout:.0f} s") from e
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise BackendError(f"{' '.join(argv[:4])} failed (exit {proc.returncode}): {tail}")
    return proc.stdout


def resolve_meta(meta: str, prefix: str = "linux-image-") -> str:
    """The package a meta package depends on now (linux-image-amd64 -> linux-image-6.1.0-56-amd64,
    linux-source -> linux-source-6.12 on Debian 13)."""
    out = run(["apt-cache", "depends", meta])
    found = depends_on(out, prefix)
    if found is None:
        raise BackendError(
            f"cannot resolve {meta}: apt-cache depends lists no {prefix}* package", hint="apt-get update"
        )
    return found


def depends_on(depends_output: str, prefix: str) -> str | None:
    for line in depends_output.splitlines():
        m = re.match(r"\s*Depends:\s*(\S+)", line)
        if m and m.group(1).startswith(prefix):
            return m.group(1)
    return None


def candidate_version(package: str) -> str:
    """The version `apt-get download` would fetch (the candidate)."""
    out = run(["apt-cache", "show", "--no-all-versions", package])
    for line in out.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    raise BackendError(f"package {package} is unknown to apt", hint="apt-get update")


def deb_version(deb: Path) -> str:
    return run(["dpkg-deb", "-f", str(deb), "Version"]).strip()


def download(package: str, version: str, into: Path) -> Path:
    """The .deb of package=version in `into` (a cache shared by builds), downloaded when absent."""
    into.mkdir(parents=True, exist_ok=True)
    for deb in sorted(into.glob(f"{package}_*.deb")):
        if deb_version(deb) == version:
            return deb
    run(["apt-get", "download", "-q", f"{package}={version}"], cwd=into)
    for deb in sorted(into.glob(f"{package}_*.deb")):
        if deb_version(deb) == version:
            return deb
    raise BackendError(f"apt-get download {package}={version} produced no .deb in {into}")


def extract(deb: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    run(["dpkg-deb", "-x", str(deb), str(into)])


def fetch_and_extract(
    packages: dict[str, str],
    deb_cache: Path,
    into: Path,
    progress: Callable[[str], None],
    skip: Iterable[str] = (),
) -> dict[str, Path]:
    """Download each pinned package (cached) and extract it under into/<name>; {name: directory}."""
    skipped = set(skip)
    extracted: dict[str, Path] = {}
    for name, version in packages.items():
        if name in skipped:
            continue
        progress(f"download {name}={version}")
        deb = download(name, version, deb_cache)
        progress(f"extract {deb.name}")
        extracted[name] = into / name
        extract(deb, extracted[name])
    return extracted


def owning_package(path: str) -> str | None:
    """`pkg=version` that installed a host file (for the manifest), or None."""
    try:
        out = run(["dpkg-query", "-S", path])
    except (BackendError, NotAvailable):
        return None
    pkg = out.split(":", 1)[0].strip()
    try:
        ver = run(["dpkg-query", "-W", "-f", "${Version}", pkg]).strip()
    except (BackendError, NotAvailable):
        return pkg
    return f"{pkg}={ver}"
