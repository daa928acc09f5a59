"""The C baseline: labs/kvm-api/c/cvmm.c, compiled with gcc at lab time, runs the same guest bytes.

Its KVM_RUN loop does nothing but decode the exit and count it, so its ns per exit is the kernel's
round trip on this host; what the Python VMM takes beyond it is the VMM's own cost (the ioctl's way
back into the interpreter, decoding `kvm_run`, the device model). The guest is passed as a file of raw
bytes with its load address and mode; the binary prints one JSON line (exits by reason, loop_ns).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from vmlab.errors import BackendError, NotAvailable
from vmlab.kvmapi.guest import Program

SOURCE_NAME = "cvmm.c"
CFLAGS = ("-O2", "-Wall")


def source_path(lab_dir: Path) -> Path:
    """c/cvmm.c in the lab's folder (a step's ctx.lab_dir)."""
    p = lab_dir / "c" / SOURCE_NAME
    if not p.is_file():
        raise NotAvailable(
            f"the C baseline {p} is missing", hint="the lab folder is incomplete: git checkout it"
        )
    return p


def build(out_dir: Path, source: Path) -> Path:
    """Compile the C VMM `source` (source_path) into out_dir (gcc -O2); NotAvailable without gcc or
    the KVM headers."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise NotAvailable(
            "gcc is not installed: the C baseline is compiled at lab time",
            hint="run scripts/setup-host.sh (or: sudo apt-get install gcc libc6-dev)",
        )
    src = source
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / "cvmm"
    proc = subprocess.run(
        [gcc, *CFLAGS, "-o", str(binary), str(src)], capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        first = next((ln for ln in proc.stderr.splitlines() if "error" in ln), proc.stderr.strip()[:200])
        if "linux/kvm.h" in proc.stderr:
            raise NotAvailable(
                "the KVM headers (linux/kvm.h) are missing: the C baseline cannot be compiled",
                hint="sudo apt-get install linux-libc-dev (scripts/setup-host.sh installs it with gcc)",
            )
        raise BackendError(
            f"gcc could not compile {src.name}: {first}", hint="gcc -O2 -o cvmm cvmm.c by hand"
        )
    return binary


@dataclass
class CRun:
    """What the C VMM printed for one run."""

    exits: dict[str, int] = field(default_factory=dict)
    loop_ns: int = 0
    stop: str = ""
    output_bytes: int = 0

    @property
    def total_exits(self) -> int:
        return sum(self.exits.values())

    @property
    def ns_per_exit(self) -> float:
        return self.loop_ns / self.total_exits if self.total_exits else float("nan")


def run_c(binary: Path, program: Program, work: Path, *, timeout: float = 30.0) -> CRun:
    """Run `program` under the C VMM once; a fault or a timeout is a BackendError naming the stop."""
    if program.bits not in (16, 32):
        raise NotAvailable(
            f"the C baseline runs 16- and 32-bit guests, not {program.name} ({program.bits}-bit)"
        )
    work.mkdir(parents=True, exist_ok=True)
    code = work / f"{program.name}.bin"
    code.write_bytes(program.code)
    secs = max(1, int(timeout))
    try:
        proc = subprocess.run(
            [str(binary), str(code), hex(program.org), str(program.bits), str(secs)],
            capture_output=True,
            timeout=secs + 10,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BackendError(f"the C VMM did not stop within {secs + 10} s on {program.name}") from None
    line = proc.stdout.decode("utf-8", "replace").strip().splitlines()
    if proc.returncode not in (0,) or not line:
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = line[-1] if line else (why[-1] if why else f"exit status {proc.returncode}")
        raise BackendError(f"the C VMM failed on {program.name}: {detail}")
    data = json.loads(line[-1])
    exits = {k: int(data[k]) for k in ("IO", "MMIO", "HLT") if int(data[k])}
    if int(data["other"]):
        exits["other"] = int(data["other"])
    return CRun(
        exits=exits,
        loop_ns=int(data["loop_ns"]),
        stop=str(data["stop"]),
        output_bytes=int(data["output_bytes"]),
    )
