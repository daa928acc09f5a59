"""`vmlab procvm ...`: run a workload under a Valgrind tool or qemu-user; build and run the observer.

Only typer is imported here at module level: `vmlab --help` must not pay for the lab's imports. Results
go to stdout (a table, or JSON with --json); progress and errors to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    """Add the `procvm` group to vmlab's CLI (named in labs/process-vm/lab.toml as `cli`)."""
    group = typer.Typer(
        help="Process VMs: Valgrind as a binary translator, QEMU user mode across ISAs.",
        no_args_is_help=True,
    )
    tool = typer.Typer(help="The observer: your own Valgrind tool, built and run.", no_args_is_help=True)
    group.command("run")(run)
    group.command("workloads")(workloads)
    tool.command("build")(tool_build)
    tool.command("run")(tool_run)
    group.add_typer(tool, name="tool")
    app.add_typer(group, name="procvm")


def _out() -> Any:
    from vmlab.cli.output import out

    return out


def _progress() -> Any:
    from vmlab.cli.output import progress_printer

    return progress_printer("procvm: ")


def run(
    workload: Annotated[
        str, typer.Argument(help="A workload name (see 'vmlab procvm workloads') or a .c file.")
    ],
    tool: Annotated[
        str,
        typer.Option(
            "--tool", "-t", help="none|memcheck|cachegrind|callgrind|lackey|qemu-x86_64|qemu-aarch64|native"
        ),
    ] = "none",
    args: Annotated[
        list[str] | None, typer.Option("--arg", "-a", help="The workload's arguments (repeat for several).")
    ] = None,
    timing: Annotated[
        bool, typer.Option("--time", help="Use the workload's timing size, not its count size.")
    ] = False,
    repeat: Annotated[int, typer.Option(min=1, max=50, help="Runs; times are medians.")] = 1,
    stats: Annotated[
        bool, typer.Option("--stats", help="Valgrind --stats=yes / QEMU -d logs, parsed.")
    ] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable result on stdout.")] = False,
) -> None:
    """Run a workload natively and under TOOL: output, CPU-time slowdown, counts and translation stats."""
    from vmlab.cli.output import emit_json, errors_to_exit

    with errors_to_exit():
        result = _run(workload, tool, args, timing, repeat, stats)
    if json_out:
        emit_json(result)
        return
    _render_run(result)


def _run(
    workload: str, tool: str, args: list[str] | None, timing: bool, repeat: int, stats: bool
) -> dict[str, Any]:
    import statistics
    import tempfile

    from vmlab.labs.catalog import lab_dir
    from vmlab.procvm import parse
    from vmlab.procvm.runs import QEMU_TOOLS, VALGRIND_TOOLS, check_tool, execute, require, require_ok
    from vmlab.procvm.workloads import LAB_NAME, WORKLOADS, build
    from vmlab.procvm.workloads import workload as lookup

    check_tool(tool)
    if tool in VALGRIND_TOOLS:
        require("valgrind")  # before compiling anything: the missing tool is the error to show
    elif tool in QEMU_TOOLS:
        require(tool)
    target = {"qemu-x86_64": "x86_64-static", "qemu-aarch64": "aarch64"}.get(tool, "x86_64")
    if workload.endswith(".c") or Path(workload).is_file():
        binary, wargs, name = (
            build("custom", target, source=Path(workload)),
            tuple(args or ()),
            Path(workload).name,
        )
        native_bin = build("custom", "x86_64", source=Path(workload))
    else:
        w = lookup(workload)
        wargs = tuple(args) if args is not None else (w.time_args if timing else w.count_args)
        folder = lab_dir(LAB_NAME)
        binary = build(w.name, target, lab_dir=folder)
        native_bin, name = build(w.name, "x86_64", lab_dir=folder), w.name
    assert name in WORKLOADS or name  # a name for the table
    progress = _progress()
    with tempfile.TemporaryDirectory(prefix="vmlab-procvm-") as tmp:
        scratch = Path(tmp)
        native = [
            require_ok(execute("native", [str(native_bin), *wargs], scratch=scratch)) for _ in range(repeat)
        ]
        extra: list[str] = []
        qlog: tuple[str, ...] = ()
        if stats and tool in QEMU_TOOLS:
            qlog = ("in_asm", "out_asm", "exec", "nochain")
        elif stats and tool != "native":
            extra = ["--stats=yes"]
        runs = []
        for i in range(repeat):
            progress(f"{tool} {name} {' '.join(wargs)} ({i + 1}/{repeat})")
            # logging slows QEMU down: only the first run logs, the others are timed clean
            runs.append(
                require_ok(
                    execute(
                        tool,
                        [str(binary), *wargs],
                        scratch=scratch,
                        extra=extra,
                        qemu_log=qlog if i == 0 else (),
                    )
                )
            )
        log = runs[0].log
        t_nat = statistics.median(r.cpu_s for r in native)
        timed = runs[1:] if qlog and len(runs) > 1 else runs
        t_tool = statistics.median(r.cpu_s for r in timed)
        result: dict[str, Any] = {
            "workload": name,
            "args": list(wargs),
            "tool": tool,
            "output": runs[0].stdout,
            "matches_native": runs[0].stdout == native[0].stdout,
            "runs": repeat,
            "native_cpu_s": t_nat,
            "tool_cpu_s": t_tool,
            "slowdown": t_tool / t_nat if t_nat > 0 else None,
            "timed_runs_logged": bool(qlog) and len(runs) == 1,
        }
        if tool == "lackey":
            result["lackey"] = parse.parse_lackey(log).counts()
        if extra:
            st = parse.parse_stats(log)
            result["stats"] = {**st.counts(), "expansion": round(st.expansion, 3)}
        if qlog:
            q = parse.parse_qemu_log(log)
            result["qemu"] = {
                **q.counts(),
                "instrs_per_block": round(q.instrs_per_block, 3),
                "expansion": round(q.expansion, 3),
            }
    return result


def _table(title: str, rows: list[tuple[str, str]]) -> Any:
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for k, v in rows:
        table.add_row(k, v)
    return table


def _render_run(r: dict[str, Any]) -> None:
    out = _out()
    out.print(r["output"], end="" if r["output"].endswith("\n") else "\n", markup=False, highlight=False)
    slow = f"{r['slowdown']:.1f}x" if r["slowdown"] is not None else "n/a"
    rows = [
        ("native CPU time", f"{r['native_cpu_s'] * 1000:.1f} ms"),
        (f"{r['tool']} CPU time", f"{r['tool_cpu_s'] * 1000:.1f} ms"),
        ("slowdown", slow + (" (logging on)" if r["timed_runs_logged"] else "")),
        ("output equals native", "yes" if r["matches_native"] else "NO"),
    ]
    for k, v in r.get("lackey", {}).items():
        rows.append((f"lackey {k}", f"{v:,}"))
    for k, v in r.get("stats", {}).items():
        rows.append((f"stats {k}", f"{v:,}" if isinstance(v, int) else f"{v:g}"))
    for k, v in r.get("qemu", {}).items():
        rows.append((f"qemu {k}", f"{v:,}" if isinstance(v, int) else f"{v:g}"))
    what = f"median of {r['runs']} runs" if r["runs"] > 1 else "1 run"
    out.print(_table(f"{r['workload']} under {r['tool']} ({what})", rows))


def workloads(
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable list.")] = False,
) -> None:
    """List the lab's workloads with their count and timing sizes."""
    from vmlab.cli.output import emit_json
    from vmlab.procvm.workloads import WORKLOADS

    items = [
        {
            "name": w.name,
            "source": w.source,
            "description": w.description,
            "count_args": list(w.count_args),
            "time_args": list(w.time_args),
        }
        for w in WORKLOADS.values()
    ]
    if json_out:
        emit_json(items)
        return
    from rich.table import Table

    table = Table("workload", "count size", "time size", "what it exercises")
    for w in WORKLOADS.values():
        table.add_row(w.name, " ".join(w.count_args), " ".join(w.time_args), w.description)
    _out().print(table)


def tool_build(
    source: Annotated[
        Path | None, typer.Option(help="An unpacked Valgrind source tree (default: Debian's, fetched).")
    ] = None,
    tool_dir: Annotated[
        Path | None, typer.Option("--tool-dir", help="Your tool folder (default: the lab's skeleton).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if cached.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable result on stdout.")] = False,
) -> None:
    """Build the observer tool into a private Valgrind prefix (cached by Valgrind version and tool hash)."""
    from vmlab.cli.output import emit_json, errors_to_exit
    from vmlab.labs.catalog import lab_dir
    from vmlab.procvm.toolbuild import build_tool, default_tool_dir
    from vmlab.procvm.workloads import LAB_NAME

    with errors_to_exit():
        tb = build_tool(
            tool_dir or default_tool_dir(lab_dir(LAB_NAME)), source=source, progress=_progress(), force=force
        )
    result = {
        "key": tb.key,
        "valgrind": tb.valgrind_version,
        "launcher": str(tb.launcher),
        "cached": tb.cached,
        "seconds": round(tb.seconds, 1),
        "log": str(tb.log) if tb.log else None,
    }
    if json_out:
        emit_json(result)
        return
    state = "cached" if tb.cached else f"built in {tb.seconds:.0f} s"
    _out().print(f"observer ({state}): {tb.launcher} --tool=observer PROG", highlight=False)


def tool_run(
    argv: Annotated[list[str], typer.Argument(help="The program and its arguments (after --).")],
    tool_dir: Annotated[
        Path | None, typer.Option("--tool-dir", help="Your tool folder (default: the lab's skeleton).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable result on stdout.")] = False,
) -> None:
    """Run PROG under the observer and under lackey; show both sets of counts side by side."""
    from vmlab.cli.output import emit_json, errors_to_exit

    with errors_to_exit():
        result = _tool_run(argv, tool_dir)
    if json_out:
        emit_json(result)
        return
    from rich.table import Table

    o, lk = result["observer"], result["lackey"]
    table = Table(
        "count", "observer", "lackey", "observer/lackey", title=" ".join(argv), title_justify="left"
    )
    for label, ok, lkk in (
        ("guest instrs", "guest_instrs", "guest_instrs"),
        ("superblocks entered", "sbs_entered", "sbs_entered"),
        ("superblocks translated", "translated", None),
    ):
        lv = lk.get(lkk) if lkk else None
        ratio = f"{o[ok] / lv:.4f}" if lv else ""
        table.add_row(label, f"{o[ok]:,}", f"{lv:,}" if lv is not None else "", ratio)
    _out().print(table)


def _tool_run(argv: list[str], tool_dir: Path | None) -> dict[str, Any]:
    import shutil
    import tempfile

    from vmlab.errors import UsageError
    from vmlab.labs.catalog import lab_dir
    from vmlab.procvm import parse
    from vmlab.procvm.runs import execute, require_ok
    from vmlab.procvm.toolbuild import build_tool, default_tool_dir
    from vmlab.procvm.workloads import LAB_NAME

    if not argv:
        raise UsageError("no program given", hint="vmlab procvm tool run -- /bin/true")
    prog = shutil.which(argv[0]) or argv[0]
    if not Path(prog).is_file():
        raise UsageError(f"no program {argv[0]!r}", hint="give a path or a command on PATH")
    tb = build_tool(tool_dir or default_tool_dir(lab_dir(LAB_NAME)), progress=_progress())
    with tempfile.TemporaryDirectory(prefix="vmlab-procvm-") as tmp:
        cmd = [prog, *argv[1:]]
        ob = require_ok(execute("observer", cmd, scratch=Path(tmp), valgrind=str(tb.launcher)))
        lk = require_ok(execute("lackey", cmd, scratch=Path(tmp), valgrind=str(tb.launcher)))
        oc, lc = parse.parse_observer(ob.log), parse.parse_lackey(lk.log)
    return {
        "argv": cmd,
        "observer": oc.counts(),
        "lackey": lc.counts(),
        "lackey_source": f"lackey of the same private build ({tb.launcher})",
        "instrs_over_lackey": oc.guest_instrs / lc.guest_instrs if lc.guest_instrs else None,
        "same_output": ob.stdout == lk.stdout,
    }
