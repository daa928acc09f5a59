"""Run a program natively, under a Valgrind tool or under qemu-user, and time it.

Time is the child's user+system CPU time (from the kernel's rusage of the waited-for child): on 2 cores
shared with other work, CPU time moves far less than wall time, and every tool here is single-threaded.
Wall time is kept beside it. Valgrind writes its own messages to --log-file, so the program's stdout and
stderr stay the program's.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vmlab.errors import BackendError, NotAvailable, UsageError

VALGRIND_TOOLS = ("none", "memcheck", "cachegrind", "callgrind", "lackey")
QEMU_TOOLS = ("qemu-x86_64", "qemu-aarch64")
ALL_TOOLS = ("native", *VALGRIND_TOOLS, *QEMU_TOOLS)

# Per-tool options: the output files that cachegrind and callgrind write go to the scratch folder.
_TOOL_OPTS: dict[str, tuple[str, ...]] = {
    "none": (),
    "memcheck": ("--leak-check=no",),
    "cachegrind": ("--cachegrind-out-file={out}",),
    "callgrind": ("--callgrind-out-file={out}",),
    "lackey": ("--basic-counts=yes",),
}


@dataclass
class Run:
    """One execution: what it printed, how it ended, what it cost."""

    tool: str
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float
    log_path: Path | None = None
    extra: list[str] = field(default_factory=list)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""


def check_tool(tool: str) -> None:
    if tool not in ALL_TOOLS:
        raise UsageError(f"unknown tool {tool!r} (known: {', '.join(ALL_TOOLS)})", hint="pick one of those")


def require(program: str) -> str:
    """The program's path, or NotAvailable naming the package that brings it (the lab's lab.toml
    `[tools]` declares it)."""
    path = shutil.which(program)
    if path is None:
        from vmlab.labs.tools import install_hint
        from vmlab.procvm.workloads import LAB_NAME

        raise NotAvailable(f"{program} is not on PATH", hint=install_hint(LAB_NAME, program))
    return path


def _timed(cmd: Sequence[str], timeout_s: float) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run cmd to its end (or kill it at the timeout); its output and wall time."""
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
        )
    except OSError as e:
        raise BackendError(f"cannot start {cmd[0]}: {e.strerror}") from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise BackendError(
            f"{' '.join(cmd[:3])} ... still running after {timeout_s:g} s; stopped it",
            hint="use a smaller workload size",
        ) from None
    wall = time.perf_counter() - start
    return subprocess.CompletedProcess(list(cmd), proc.returncode, out, err), wall


def _cpu_children() -> float:
    """CPU time of reaped children; its delta around one run is that run's (runs are sequential)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def execute(
    tool: str,
    argv: Sequence[str],
    *,
    scratch: Path,
    extra: Sequence[str] = (),
    tag: str = "",
    timeout_s: float = 300.0,
    valgrind: str | None = None,
    qemu_log: Sequence[str] = (),
) -> Run:
    """Run argv natively (`native`), under a Valgrind tool or under qemu-user.

    `extra` are more tool options (`--stats=yes`, `--vex-guest-chase=no`); `qemu_log` are -d items whose
    log goes to a file in `scratch`. `valgrind` is the launcher to use (a private build for the observer).
    """
    if not (tool == "observer" and valgrind):  # the student's tool runs from its private build only
        check_tool(tool)
    if not argv:
        raise UsageError("no program to run", hint="give the program after --")
    scratch.mkdir(parents=True, exist_ok=True)
    stem = f"{tool}{'-' + tag if tag else ''}"
    log_path: Path | None = None
    if tool == "native":
        cmd = list(argv)
    elif tool in QEMU_TOOLS:
        cmd = [require(tool)]
        if qemu_log:
            log_path = scratch / f"{stem}.qemu.log"
            cmd += ["-d", ",".join(qemu_log), "-D", str(log_path)]
        cmd += [*extra, *argv]
    else:
        launcher = valgrind or require("valgrind")
        log_path = scratch / f"{stem}.valgrind.log"
        opts = [o.format(out=scratch / f"{stem}.out") for o in _TOOL_OPTS.get(tool, ())]
        cmd = [launcher, f"--tool={tool}", f"--log-file={log_path}", *opts, *extra, *argv]
    before = _cpu_children()
    proc, wall = _timed(cmd, timeout_s)
    cpu = _cpu_children() - before
    run = Run(tool, list(argv), proc.returncode, proc.stdout, proc.stderr, wall, cpu, log_path, list(extra))
    if tool != "native" and tool not in QEMU_TOOLS and "failed to start tool" in (proc.stderr + run.log):
        raise UsageError(
            f"valgrind has no tool {tool!r}: {(proc.stderr + run.log).strip().splitlines()[-1]}",
            hint="build it first ('vmlab procvm tool build')",
        )
    return run


def require_ok(run: Run) -> Run:
    """A run that failed is an error with the tool's last words, not a figure."""
    if run.returncode != 0:
        tail = (run.stderr.strip() or run.log.strip() or "no output").splitlines()[-1]
        raise BackendError(
            f"{run.tool} {' '.join(run.argv)} exited with {run.returncode}: {tail}",
            hint=f"run it by hand to see why{' (log: ' + str(run.log_path) + ')' if run.log_path else ''}",
        )
    return run
