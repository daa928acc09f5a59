"""Lifecycle commands at top level: up, ls, exec, ssh, console, down."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Annotated

import typer

from vmlab.cli.output import emit_json, err, errors_to_exit, out, progress_printer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
ConnectOpt = Annotated[
    str | None,
    typer.Option(
        "--connect",
        "-c",
        help="libvirt URI (default: $VMLAB_LIBVIRT_URI, $LIBVIRT_DEFAULT_URI, then qemu:///system for "
        "root, qemu:///session otherwise; `vmlab doctor` says which). Without it, ls and down look at "
        "every local URI.",
    ),
]


def _sigterm_as_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def up(
    name: Annotated[str, typer.Argument(help="Instance name (a-z, 0-9, '-').")],
    kind: Annotated[
        str, typer.Option(help="vm (libvirt guest), container (Docker) or sandbox (gVisor).")
    ] = "vm",
    runtime: Annotated[
        str | None,
        typer.Option(help="A runtime of that kind instead of its default (vmlab doctor lists them)."),
    ] = None,
    image: Annotated[str, typer.Option(help="Image name (vmlab image ls).")] = "tiny",
    memory: Annotated[int | None, typer.Option(help="Memory in MiB (default: the image's).")] = None,
    vcpus: Annotated[int, typer.Option(help="Virtual CPUs.")] = 1,
    accel: Annotated[str, typer.Option(help="auto, kvm or tcg (VMs).")] = "auto",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 90.0,
    kernel_args: Annotated[
        str, typer.Option(help="Extra kernel command line (VMs), e.g. mitigations=off.")
    ] = "",
    run: Annotated[str | None, typer.Option(help="Run id to group instances (default: a new one).")] = None,
    lab: Annotated[str, typer.Option(help="Lab name recorded on the resource.")] = "",
    connect: ConnectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create NAME and wait until it is ready (VM: serial marker, SSH; container: first exec)."""
    from vmlab.backends import default_runtime, runtime_kind
    from vmlab.backends.base import InstanceSpec
    from vmlab.backends.context import RunContext, parse_accel
    from vmlab.backends.lifecycle import summary
    from vmlab.backends.lifecycle import up as do_up
    from vmlab.errors import UsageError
    from vmlab.paths import new_run_id

    old = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        with errors_to_exit():
            default_runtime(kind)  # an unknown kind is a usage error naming the known ones
            ctx = RunContext.build(connect, [runtime] if runtime else [], parse_accel(accel))
            if runtime and runtime_kind(runtime) != kind:
                raise UsageError(
                    f"runtime {runtime} runs a {runtime_kind(runtime)}, not a {kind}",
                    hint=f"--kind {runtime_kind(runtime)} --runtime {runtime}",
                )
            spec = InstanceSpec(
                name=name,
                run_id=run or new_run_id(),
                image=image,
                memory_mib=memory,
                vcpus=vcpus,
                accel=ctx.accel,
                lab=lab,
                ready_timeout_s=timeout,
                # a VM runtime's own option: given only when set, so other kinds run as before
                options={"kernel_args": kernel_args} if kernel_args else None,
            )
            try:
                inst = do_up(spec, ctx.runtime_for(kind), uri=ctx.uri, progress=progress_printer("up: "))
            except Exception as e:
                if hasattr(e, "console_tail"):
                    tail = list(e.console_tail)[-15:] or [
                        "(nothing on the serial console; `quiet` is on the "
                        "kernel command line: try --kernel-args loglevel=7)"
                    ]
                    for line in tail:
                        err.print(f"console| {line}", highlight=False, markup=False)
                raise
    finally:
        signal.signal(signal.SIGTERM, old)
    data = summary(inst)
    data["run_id"] = spec.run_id
    if json_out:
        emit_json(data)
        return
    ladder = "  ".join(f"{k}={v:.2f}s" for k, v in data["ladder_s"].items() if k != "create_called")
    out.print(f"{data['name']} ({data['kind']}, accel {data['accel']}) ready: {ladder}", highlight=False)
    if "guest_uptime_at_marker_s" in data:
        out.print(f"guest uptime at ready marker: {data['guest_uptime_at_marker_s']:.2f}s", highlight=False)


def ls(connect: ConnectOpt = None, json_out: JsonOpt = False) -> None:
    """List vmlab guests and containers (found by libvirt metadata and Docker labels)."""
    from vmlab.backends.lifecycle import list_all

    with errors_to_exit():
        listing = list_all(connect)
    for kind, why in listing.unavailable.items():
        err.print(f"[yellow]warning:[/] {kind}s not listed: {why}", highlight=False)
    rows = [r.as_dict() for r in listing.records]
    if json_out:
        emit_json(rows)
        return
    from rich.table import Table

    table = Table()
    for col in ("name", "kind", "state", "accel", "address", "uptime", "run"):
        table.add_column(col)
    for r in rows:
        up_s = r["uptime_s"]
        table.add_row(
            r["name"],
            r["kind"],
            r["state"],
            r["accel"],
            r["address"],
            f"{up_s:.0f}s" if up_s is not None else "-",
            r["run_id"],
        )
    out.print(table)


def exec_(
    name: Annotated[str, typer.Argument(help="Instance name.")],
    cmd: Annotated[list[str], typer.Argument(help="Command and arguments (after --).")],
    timeout: Annotated[float, typer.Option(help="Seconds before the command is abandoned.")] = 60.0,
    connect: ConnectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run a command in NAME (SSH for VMs, docker exec for containers); exits with its exit code."""
    import sys

    from vmlab.backends.lifecycle import attached

    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    with errors_to_exit(), attached(name, connect) as inst:
        res = inst.exec(cmd, timeout=timeout)
    if json_out:
        emit_json(
            {
                "argv": list(res.argv),
                "rc": res.rc,
                "stdout": res.stdout,
                "stderr": res.stderr,
                "duration_s": round(res.duration_s, 4),
            }
        )
    else:
        sys.stdout.write(res.stdout)
        sys.stdout.flush()
        sys.stderr.write(res.stderr)
        sys.stderr.flush()
    raise typer.Exit(res.rc)


def ssh(name: Annotated[str, typer.Argument(help="Instance name.")], connect: ConnectOpt = None) -> None:
    """An interactive shell in NAME, the way its runtime opens one (OpenSSH with the pinned host key
    for a VM, docker exec -it for a container or sandbox)."""
    import os

    from vmlab.backends.lifecycle import attached

    with errors_to_exit(), attached(name, connect) as inst:
        argv = inst.shell_argv()
    os.execvp(argv[0], argv)


def console(
    name: Annotated[str, typer.Argument(help="Instance name.")],
    lines: Annotated[int, typer.Option("--lines", help="How many lines from the end.")] = 40,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines (Ctrl-C stops).")
    ] = False,
    connect: ConnectOpt = None,
) -> None:
    """Print the serial console log of a VM (container: its output)."""
    import sys
    import time

    from vmlab.backends.lifecycle import attached

    with errors_to_exit(), attached(name, connect) as inst:
        for line in inst.console_tail(lines):
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
        seen = inst.console_tail(100000)
        while follow:
            now = inst.console_tail(100000)
            fresh = now[len(seen) :] if now[: len(seen)] == seen else now[-lines:]
            for line in fresh:
                sys.stdout.write(line + "\n")
            sys.stdout.flush()
            seen = now
            time.sleep(0.2)


def down(
    names: Annotated[list[str] | None, typer.Argument(help="Instance names.")] = None,
    run: Annotated[str | None, typer.Option(help="Destroy everything of this run id.")] = None,
    all_: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Destroy every vmlab resource of this VMLAB_HOME "
            "(found by metadata/labels, not by local state).",
        ),
    ] = False,
    all_homes: Annotated[
        bool, typer.Option("--all-homes", help="With --all: also those of other VMLAB_HOMEs.")
    ] = False,
    connect: ConnectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Destroy guests and containers by name, run id or all; works without the local state dir."""
    from vmlab.backends.lifecycle import down as do_down

    with errors_to_exit():
        done, listing = do_down(names, run, all_ or all_homes, connect, all_homes=all_homes)
    for kind, why in listing.unavailable.items():
        err.print(f"[yellow]warning:[/] {kind}s not checked: {why}", highlight=False)
    if json_out:
        emit_json({"destroyed": [r.as_dict() for r in done]})
        return
    if not done:
        err.print("nothing to destroy")
    for r in done:
        out.print(f"destroyed {r.kind} {r.name} ({r.resource})", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("ls")(ls)
    app.command("exec")(exec_)
    app.command("ssh")(ssh)
    app.command("console")(console)
    app.command("down")(down)
