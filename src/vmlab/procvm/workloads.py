"""The lab's guest programs: small deterministic C sources compiled at lab time, plus /bin/true.

Each program takes its size on the command line, so one binary serves both the count runs (small,
because lackey is ~80x slower than native) and the timing runs (large enough that the marginal time
dominates Valgrind's ~0.2 s start-up). Binaries are cached under VMLAB_HOME/procvm/bin/<key>/, keyed by
the source's sha256, the compiler's version line and the flags: editing a source or upgrading gcc
rebuilds, nothing else does.

Targets: `x86_64` (gcc -O2, dynamic: what Valgrind usually sees), `x86_64-static` (for qemu-x86_64,
so the same-ISA and cross-ISA QEMU runs both start a static binary) and `aarch64`
(aarch64-linux-gnu-gcc -O2 -static, run by qemu-aarch64).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vmlab.errors import NotAvailable, UsageError
from vmlab.paths import vmlab_home

LAB_NAME = "process-vm"  # the lab's name, as its folder and lab.toml call it


@dataclass(frozen=True)
class Workload:
    name: str
    source: str | None  # file in labs/process-vm/workloads/, None for a system binary
    description: str
    count_args: tuple[str, ...]  # small: for lackey, the observer, QEMU logs
    time_args: tuple[str, ...]  # large: for slowdown factors


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("loop", "loop.c", "tight arithmetic loop (one hot block)", ("10000",), ("20000000",)),
        Workload("sort", "sort.c", "insertion sort: branchy, data-dependent", ("300",), ("7000",)),
        Workload("recurse", "recurse.c", "naive fib: calls and returns", ("15",), ("32",)),
        Workload("scan", "scan.c", "strided reads of a buffer", ("256", "2"), ("16384", "16")),
        Workload("true", None, "/bin/true: start-up of a dynamic binary only", (), ()),
    )
}

TARGETS = ("x86_64", "x86_64-static", "aarch64")


def workload(name: str) -> Workload:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise UsageError(
            f"unknown workload {name!r} (known: {', '.join(WORKLOADS)})", hint="pick one of those names"
        ) from None


def _compiler(target: str) -> tuple[str, list[str]]:
    if target == "x86_64":
        return "gcc", ["-O2"]
    if target == "x86_64-static":
        return "gcc", ["-O2", "-static"]
    if target == "aarch64":
        return "aarch64-linux-gnu-gcc", ["-O2", "-static"]
    raise UsageError(f"unknown target {target!r} (known: {', '.join(TARGETS)})")


def compiler_version(cc: str) -> str:
    """The compiler's first --version line, part of the cache key."""
    path = shutil.which(cc)
    if path is None:
        from vmlab.labs.tools import install_hint

        raise NotAvailable(f"{cc} is not on PATH", hint=install_hint(LAB_NAME, cc))
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else cc


def build(
    name: str,
    target: str = "x86_64",
    *,
    lab_dir: Path | None = None,
    source: Path | None = None,
    cache: Path | None = None,
) -> Path:
    """The binary of workload `name` for `target`, compiled once per (source, compiler, flags).

    A lab workload's source is in `lab_dir`/workloads (a step's ctx.lab_dir; elsewhere
    vmlab.labs.catalog.lab_dir); `source` overrides it (the student's extra workload); /bin/true is
    returned as is for x86_64 and has no other targets.
    """
    w = WORKLOADS.get(name)
    if source is None:
        if w is None:
            workload(name)  # raises the unknown-workload error
            raise AssertionError(name)
        if w.source is None:
            if target != "x86_64":
                raise UsageError(f"workload {name!r} is a system binary: x86_64 only")
            path = shutil.which(name) or f"/bin/{name}"
            return Path(path)
        if lab_dir is None:
            raise ValueError(f"workload {name!r}: build() needs the lab folder (lab_dir=)")
        source = lab_dir / "workloads" / w.source
    if not source.is_file():
        raise UsageError(f"workload source {source} does not exist")
    cc, flags = _compiler(target)
    version = compiler_version(cc)
    key = hashlib.sha256(
        b"\0".join([source.read_bytes(), version.encode(), " ".join(flags).encode(), target.encode()])
    ).hexdigest()[:16]
    out_dir = (cache or vmlab_home() / "procvm" / "bin") / key
    binary = out_dir / f"{source.stem}.{target}"
    if binary.is_file():
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".build-", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        r = subprocess.run(
            [cc, *flags, "-o", str(tmp_path), str(source)], capture_output=True, text=True, check=False
        )
        if r.returncode != 0:
            first = next((ln for ln in r.stderr.splitlines() if "error" in ln), r.stderr.strip()[:200])
            raise UsageError(
                f"workload {source.name} does not compile for {target}: {first.strip()}",
                hint=f"fix the source; the command was: {cc} {' '.join(flags)} {source.name}",
            )
        tmp_path.chmod(0o755)
        os.replace(tmp_path, binary)  # atomic: a parallel build of the same key is harmless
    finally:
        tmp_path.unlink(missing_ok=True)
    return binary
