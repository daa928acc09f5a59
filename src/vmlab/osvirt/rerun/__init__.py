"""Tutors' re-run of os-virt (`vmlab grade --rerun`, lab.toml `[rerun]`, `where = "host"`): the student's
handed-in box.py on hidden probes, in a jail on the runner (vmlab.osvirt.jail).

What the student never saw, drawn per student from the tutor's secret (`ctx.derive`), never from the
hand-in: the hostname (box-1000..9999, outside the variants' 100..999), another system call to deny
(chmod or rmdir, with mkdir allowed), other memory and pids limits, a hidden file next to the root file
system, an extra interface in the jail's network namespace, and a nonce in the probe script.

Three runs of the box: the probe run (its shell waits while the runner reads the shell's process from
the host: vmlab.osvirt.outside), a memory run (twice the hidden limit: OOM kill) and a fork run (the
chain stops below the hidden pids.max). Each hidden check belongs to a task; it is `claimed` (kind
`rerun-claim`: failing it zeroes the score, flag `rerun-mismatch`) when the report passes every
required check of that task, and `skipped` when the report did not run the task's step. A jail that
could not be made, a launcher that did not reach the box, or a box that needs a package the runner's
Python lacks, is an `error` check: the runner's fault, held for review.

This module is re-run material: `vmlab release` leaves it out of the student kit.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from vmlab.errors import VmlabError
from vmlab.osvirt import outside
from vmlab.osvirt.jail import Jail, JailError, jail, stop
from vmlab.osvirt.probes import FORK_SCRIPT, alloc_script
from vmlab.osvirt.rerun.model import STEP_OF_TASK, Hidden, Outcome, RerunParams

if TYPE_CHECKING:
    from vmlab.grade.rerun import RerunContext
    from vmlab.report.model import CheckResult

# the probe shell: answers from inside, a denied call and an allowed one whose effects the runner sees
# in the root file system afterwards, then it waits on stdin while the runner looks at it from outside
HIDDEN_SCRIPT = r"""
# __NONCE__
echo "pid=$$"
read h < /proc/sys/kernel/hostname; echo "hostname=$h"
if err=$(mkdir /tmp/__NONCE__-made 2>&1); then echo mkdir=allowed; else echo "mkdir=${err##*: }"; fi
if err=$(__DENIED__ 2>&1); then echo denied=allowed; else echo "denied=${err##*: }"; fi
if out=$(renice -n -5 -p $$ 2>&1); then echo priv=allowed; else echo priv=denied; fi
echo ready
read line
"""
DENIED_CMD = {"chmod": "chmod 600 /tmp/__NONCE__-file", "rmdir": "rmdir /tmp/__NONCE__-dir"}


def draw(raw: bytes, p: RerunParams) -> Hidden:
    """The hidden values from derived bytes (a regrade draws the same; nobody without the secret can)."""

    def pick(lo_hi: tuple[int, int], b: bytes) -> int:
        lo, hi = lo_hi
        return lo + int.from_bytes(b, "big") % (hi - lo + 1)

    deny = [d for d in p.deny if d in DENIED_CMD] or ["chmod"]
    return Hidden(
        host_n=pick(p.host_n, raw[0:2]),
        deny=deny[raw[2] % len(deny)],
        memory_mib=pick(p.memory_mib, raw[3:5]) // 8 * 8 or 8,
        pids_max=pick(p.pids_max, raw[5:7]),
        nonce="vmlab-" + raw[8:14].hex(),
        iface="vr" + raw[14:18].hex()[:8],
        outer_host="rr-" + raw[18:22].hex(),
        file_name="hidden-" + raw[22:30].hex(),
    )


class _Fault(Exception):
    """The runner's fault during a run (the launcher never reached the box, a package missing)."""


def _box_argv(
    p: RerunParams, j: Jail, h: Hidden, name: str, cmd: str, *, deny: bool, limits: bool
) -> list[str]:
    argv = [
        p.python,
        str(j.dir / "box.py"),
        "--rootfs",
        str(j.dir / "rootfs"),
        "--timeout",
        str(p.box_timeout_s),
    ]
    argv += ["--name", name, "--hostname", f"box-{h.host_n}"]
    if limits:
        argv += ["--memory-mib", str(h.memory_mib), "--pids-max", str(h.pids_max)]
    if deny:
        argv += ["--deny-syscall", h.deny]
    return [*argv, "--", "/bin/sh", "-c", cmd]


def _one_run(j: Jail, h: Hidden, argv: list[str], wait_s: float, look: Path | None = None) -> Outcome:
    """One box run in the jail; with `look` (the hidden file), the shell is read from outside when it
    prints `ready`."""
    proc, marker = j.launch(argv, hostname=h.outer_host, iface=h.iface)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        """Lines to the queue, at most 1 MiB of them (a box may print without end); then drain."""
        assert proc.stdout is not None
        kept = 0
        for line in proc.stdout:
            kept += len(line)
            if kept <= 1 << 20:
                lines.put(line)
        lines.put(None)

    if look is None:
        assert proc.stdin is not None
        proc.stdin.close()  # the limit runs read nothing

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    out: list[str] = []
    v: outside.View | None = None
    jail_ns: dict[str, int] = {}
    reach = False
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            out.append(line)
            if look is not None and line.strip() == "ready":
                pid = outside.find_shell(j.uid, h.nonce)
                if pid is not None:
                    try:
                        v = outside.view(pid)
                        reach = outside.reachable(look, v)
                        kids = outside.children_of(proc.pid)  # unshare's child: the jail's PID 1
                        jail_ns = outside.ns_of(kids[0]) if kids else {}
                    except OSError:
                        v = None
                assert proc.stdin is not None
                with contextlib.suppress(OSError):  # a box that has gone already (a liar's "ready")
                    proc.stdin.write("go\n")
                    proc.stdin.flush()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(1.0, deadline - time.monotonic()))
    finally:
        timed_out = proc.poll() is None
        stop(proc)
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        reader.join(5)
    while not lines.empty():
        item = lines.get()
        if item is not None:
            out.append(item)
    assert proc.stderr is not None
    err = proc.stderr.read()
    if not marker.exists():
        raise _Fault(f"the jail's launcher failed before the box ran: {err.strip()[-300:]}")
    if "ModuleNotFoundError" in err:
        raise _Fault(
            f"box.py needs a package the runner's Python lacks: {err.strip().splitlines()[-1][:200]}"
        )
    left = len(j.leftovers())
    j.sweep()
    code = proc.returncode if proc.returncode is not None else -9
    return Outcome(code, "".join(out), err, v, jail_ns, left, reach, timed_out)


def _claims(ctx: RerunContext) -> tuple[dict[str, bool], dict[str, bool]]:
    """Per task: does the report pass every required check of it (a claim), and did its step run fine?"""
    from vmlab.check.grader import grade_report

    results, _ = grade_report(ctx.report, ctx.lab, answer_key={})
    claimed: dict[str, bool] = {}
    for task in STEP_OF_TASK:
        mine = [r for r in results if r.task == task and r.kind != "question" and r.required and not r.timing]
        claimed[task] = bool(mine) and all(r.outcome == "pass" for r in mine)
    ran = {
        t: (rec := ctx.report.steps.get(s)) is not None and rec.status == "ok"
        for t, s in STEP_OF_TASK.items()
    }
    return claimed, ran


def _hide(ctx: RerunContext, box: Path) -> list[Path]:
    """Folders the box must not read: vmlab's tree (solutions, hooks) and the class's hand-ins."""
    import tempfile

    import vmlab

    package = Path(vmlab.__file__).resolve().parent
    checkout = package.parents[1]  # a tutors' checkout (src/vmlab beside labs/), else the package only
    hide = [checkout if (checkout / "labs").is_dir() else package]
    rec = ctx.report.inputs.get("box")
    if rec is not None:
        report_dir = box.parents[len(PurePosixPath(rec.artifact).parts) - 1]
        tmp = Path(tempfile.gettempdir()).resolve()
        for d in (report_dir.parent, report_dir):
            if d != Path("/") and not tmp.is_relative_to(d):
                hide.append(d)
                break
    return [d for d in hide if d.is_dir()]


def _prepare(ctx: RerunContext, j: Jail, h: Hidden, box: Path) -> Path:
    from vmlab.images.cache import get_image
    from vmlab.osvirt.box import unpack_rootfs

    shutil.copyfile(box, j.dir / "box.py")
    rootfs = unpack_rootfs(get_image("tiny", verify="quick").rootfs_tar, j.dir / "rootfs")
    tmp = rootfs / "tmp"
    tmp.mkdir(exist_ok=True)
    (tmp / f"{h.nonce}-file").write_text("chmod me\n")
    (tmp / f"{h.nonce}-file").chmod(0o644)
    (tmp / f"{h.nonce}-dir").mkdir()
    hidden = j.dir / h.file_name
    hidden.write_text("a file on the host, next to the box's root, that the box must not reach\n")
    j.chown(j.dir)
    return hidden


def rerun(ctx: RerunContext) -> list[CheckResult]:
    p = RerunParams.model_validate(ctx.spec.params)
    box = ctx.inputs.get("box")
    if box is None:
        return []  # the hand-in carries no box.py: `rerun:inputs[box]` already says so
    h = draw(ctx.derive("probes", 32), p)
    claimed, ran = _claims(ctx)
    ctx.progress(f"{ctx.student}: box.py on hidden probes in a jail (box-{h.host_n}, deny {h.deny})")
    try:
        if not os.access(p.python, os.X_OK):
            raise JailError(f"the runner has no {p.python} for box.py", hint="apt-get install python3")
        with jail(hide=_hide(ctx, box)) as j:
            hidden = _prepare(ctx, j, h, box)
            script = HIDDEN_SCRIPT.replace("__DENIED__", DENIED_CMD[h.deny]).replace("__NONCE__", h.nonce)
            wait = p.box_timeout_s + 15
            argv = _box_argv(p, j, h, f"{j.user}-p", script, deny=True, limits=True)
            probe = _one_run(j, h, argv, wait, look=hidden)
            effects = _effects(j, h)
            mem = fork = None
            # a probe run killed at the deadline: the limit runs would hang too
            if ran["t5-cgroups"] and not probe.timed_out:
                script = alloc_script(2 * h.memory_mib << 20)
                mem = _one_run(j, h, _box_argv(p, j, h, f"{j.user}-m", script, deny=False, limits=True), wait)
                script = FORK_SCRIPT.replace("__N__", str(h.pids_max + 8))
                fork = _one_run(
                    j, h, _box_argv(p, j, h, f"{j.user}-f", script, deny=False, limits=True), wait
                )
            root_id = _root_id(j)
            uid = j.uid
    except (JailError, _Fault) as e:
        msg = e.one_line() if isinstance(e, VmlabError) else str(e)
        return [ctx.check("jail", None, msg, description="the re-run's jail on the runner")]
    except VmlabError as e:
        return [ctx.check("jail", None, e.one_line(), description="the re-run's jail on the runner")]
    from vmlab.osvirt.rerun.checks import judge

    return judge(ctx, p, h, claimed, ran, probe, effects, mem, fork, root_id, uid)


def _effects(j: Jail, h: Hidden) -> dict[str, bool]:
    """What the probe shell's calls did to the root file system, seen from the host."""
    tmp = j.dir / "rootfs" / "tmp"
    f = tmp / f"{h.nonce}-file"
    denied_effect = (
        f.exists() and stat.S_IMODE(f.stat().st_mode) != 0o644
        if h.deny == "chmod"
        else not (tmp / f"{h.nonce}-dir").exists()
    )
    return {"mkdir_made": (tmp / f"{h.nonce}-made").is_dir(), "denied_took_effect": denied_effect}


def _root_id(j: Jail) -> tuple[int, int]:
    st = (j.dir / "rootfs").stat()
    return (st.st_dev, st.st_ino)
