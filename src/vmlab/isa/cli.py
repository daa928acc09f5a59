"""`vmlab isa gen|run|bench`: the homework machine, its engines and their measured speed."""

# ruff: noqa: E741  (l is the homework's register L)

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from vmlab.cli.output import emit_json, err, errors_to_exit, out, progress_printer

app = typer.Typer(
    help="ISA emulation: generate guest programs, run and benchmark the engines.", no_args_is_help=True
)


def _ints(text: str, what: str) -> list[int]:
    from vmlab.errors import UsageError

    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{what} {text!r}: expected numbers separated by commas, e.g. 1,2,3,4") from None


@app.command("gen")
def gen(
    size: Annotated[int, typer.Option("--size", help="Number of instructions (at least 8).")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="LCG seed.")] = 1,
    probs: Annotated[
        str, typer.Option("--probs", help="Relative probabilities of opcodes 1..5.")
    ] = "1/9/1/5/5",
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write the program bytes here (and seed, A, L to FILE.json)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Generate a program with the homework's generator (one opcode byte per instruction)."""
    from collections import Counter

    from vmlab.errors import UsageError
    from vmlab.isa.gen import generate, parse_probs, write_program
    from vmlab.isa.machine import NAMES

    side = None
    with errors_to_exit():
        p = parse_probs(probs)
        program = generate(size, seed, p)
        if output is not None:
            if output.suffix == ".json":
                raise UsageError(
                    f"-o {output}: the .json name is the program's description", hint="use -o p.bin"
                )
            side = write_program(program, output, seed=seed, size=size, probs=p)
    hist = Counter(program.code)
    info: dict[str, Any] = {
        "size": size,
        "seed": seed,
        "probs": probs,
        "a": program.a,
        "l": program.l,
        "opcodes": {NAMES[op]: hist.get(op, 0) for op in NAMES},
        "file": str(output) if output else None,
        "description": str(side) if side else None,
    }
    if output is None:
        info["code"] = "".join(str(b) for b in program.code)
    if json_out:
        emit_json(info)
        return
    if output is None:
        out.print(info["code"], highlight=False)
    err.print(
        f"{size} instructions, initial A={program.a} L={program.l}; "
        + ", ".join(f"{k} {v}" for k, v in info["opcodes"].items()),
        highlight=False,
    )
    if output is not None:
        err.print(f"wrote {output} and {side}; run it: vmlab isa run {output}", highlight=False)


@app.command("run")
def run(
    file: Annotated[
        Path | None, typer.Argument(help="A program file (raw opcode bytes; A and L from FILE.json).")
    ] = None,
    scenario: Annotated[
        int | None, typer.Option("--scenario", help="Run scenario 1..4 instead of a file.")
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="Engine name (see 'vmlab isa bench --help').")
    ] = "switch",
    engine_module: Annotated[
        Path | None,
        typer.Option("--engine-module", help="Your engine file instead (run in a child process)."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("-p", "--param", help="Engine parameter KEY=VALUE, e.g. -p hot=8 (repeatable)."),
    ] = None,
    a: Annotated[int | None, typer.Option("--a", help="Initial A (default: FILE.json, else 0).")] = None,
    l: Annotated[int | None, typer.Option("--l", help="Initial L (default: FILE.json, else 0).")] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            help="Give up when the program has not halted by then (0: never).",
        ),
    ] = 300.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run one program on one engine and compare it with the oracle (exit 1 on a mismatch).

    The oracle is the scenario's published one, or for a program file the reference interpreter's.
    """
    from vmlab.errors import UsageError
    from vmlab.isa.gen import SCENARIOS, scenario_program
    from vmlab.isa.machine import load_program
    from vmlab.isa.registry import parse_param

    with errors_to_exit():
        if (file is None) == (scenario is None):
            raise UsageError("give either a program FILE or --scenario N", hint="vmlab isa run --scenario 4")
        params = dict(parse_param(p) for p in param or [])
        program = scenario_program(scenario) if scenario is not None else load_program(file, a, l)  # type: ignore[arg-type]
        if engine_module is not None:
            name = str(engine_module)
            result, seconds = _run_in_child(engine_module, program, file, params, timeout)
        else:
            name = engine
            result, seconds = _run_here(engine, program, params, timeout)
        if scenario is not None:
            s = SCENARIOS[scenario]
            want_a, want_n = s.final_a, s.executed
        else:
            want_a, want_n = _reference_oracle(program, timeout)
    ok = (result.a, result.executed) == (want_a, want_n)
    ns = seconds / result.executed * 1e9 if result.executed else 0.0
    info: dict[str, Any] = {
        "program": program.name,
        "engine": name,
        "initial": {"a": program.a, "l": program.l},
        "params": params,
        "a": result.a,
        "l": result.l,
        "executed": result.executed,
        "seconds": seconds,
        "stats": result.stats,
        "oracle": {"a": want_a, "executed": want_n, "matches": ok},
    }
    if json_out:
        emit_json(info)
    else:
        import textwrap

        out.print(
            f"{program.name} on {name}: A={result.a} L={result.l} executed={result.executed} "
            f"in {seconds * 1e3:.1f} ms ({ns:.1f} ns/instruction)",
            highlight=False,
        )
        if result.stats:
            stats = ", ".join(f"{k}={v}" for k, v in result.stats.items())
            for line in textwrap.wrap(stats, 76, initial_indent="  ", subsequent_indent="  "):
                out.print(line, highlight=False)
        out.print(
            f"  oracle A={want_a} executed={want_n}: " + ("[green]match[/]" if ok else "[red]MISMATCH[/]")
        )
    if not ok:
        raise typer.Exit(1)


def _run_here(engine: str, program: Any, params: dict[str, Any], timeout: float) -> tuple[Any, float]:
    """A built-in engine in this process, under a wall-time limit."""
    from vmlab.isa.bench import time_engine
    from vmlab.isa.deadline import deadline
    from vmlab.isa.registry import bind_params, get_engine

    fn = bind_params(get_engine(engine), params, f"engine {engine!r}")
    with deadline(timeout, f"{program.name} on {engine}"):
        measured = time_engine(fn, program, 1, engine)
    return measured.result, measured.samples[0]


def _run_in_child(
    module: Path, program: Any, file: Path | None, params: dict[str, Any], timeout: float
) -> tuple[Any, float]:
    """A student's engine in the worker: a raise, an endless loop or stray output is one line."""
    import json
    import sys

    from vmlab.errors import UsageError, VmlabError
    from vmlab.isa.lab import call_worker
    from vmlab.isa.machine import Result
    from vmlab.isa.registry import load_engine_file

    if not module.is_file():
        load_engine_file(module)  # the one-line "does not exist" with its hint
    argv = [sys.executable, "-m", "vmlab.isa.worker", "--engine-file", str(module.absolute())]
    if file is not None:
        argv += ["--program", str(file.absolute()), "--a", str(program.a), "--l", str(program.l)]
    else:
        argv += ["--scenario", program.name.lstrip("S")]
    argv += [f"--param={k}={json.dumps(v)}" for k, v in params.items()]
    data = call_worker(argv, timeout if timeout > 0 else 1e9)
    if "error" in data:
        kind = data.get("error_kind")
        cls = UsageError if kind == "usage" else VmlabError
        raise cls(f"{module.name}: {data['error']}")
    stats = {k: int(v) for k, v in (data.get("stats") or {}).items()}
    result = Result(a=int(data["a"]), l=int(data["l"]), executed=int(data["executed"]), stats=stats)
    return result, float(data["samples"][0])


def _reference_oracle(program: Any, timeout: float) -> tuple[int, int]:
    from vmlab.isa.deadline import deadline
    from vmlab.isa.reference import run_reference

    with deadline(timeout, f"{program.name} on the reference interpreter"):
        want = run_reference(program)
    return want.a, want.executed


@app.command("bench")
def bench(
    scenarios: Annotated[str, typer.Option("--scenarios", help="Scenarios, e.g. 1,2,3,4.")] = "1,2,3,4",
    engines: Annotated[str, typer.Option("--engines", help="Engines, e.g. switch,bt-* or all.")] = "all",
    runs: Annotated[int, typer.Option("--runs", "-n", help="Runs per engine and scenario (median).")] = 3,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Report file (default $VMLAB_HOME/runs/<run>/report.json)."),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a plot of ns/instruction (PNG/SVG).")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("-p", "--param", help="ENGINE.KEY=VALUE, e.g. -p bt-tiered.hot=32 (repeatable)."),
    ] = None,
    wide: Annotated[bool, typer.Option("--wide", help="All columns (wider than 80).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Time vmlab's reference engines on the scenarios, one report (the tutors' demonstration).

    The reference engines are the tasks' answers: no step of the lab runs them, and the student kit
    (vmlab release) leaves them out, so there this says they are not installed.
    """
    from vmlab.cli.output import relative_to_cwd
    from vmlab.errors import UsageError
    from vmlab.isa.bench import bench_report, plot_ns_per_instruction, speedups
    from vmlab.isa.registry import bind_params, get_engine, parse_engines, parse_param
    from vmlab.paths import new_run_id, run_dir, usable_home
    from vmlab.report.io import probe_writable, save_report

    with errors_to_exit():
        nums = _ints(scenarios, "--scenarios")
        names = parse_engines(engines)
        for n in names:
            get_engine(n)  # not installed (a student kit): one line before anything runs
        params: dict[str, dict[str, Any]] = {}
        for item in param or []:
            target, _, value = item.partition(".")
            if target not in names:
                raise UsageError(
                    f"-p {item}: {target!r} is not one of the engines measured",
                    hint=f"ENGINE.KEY=VALUE with ENGINE among {', '.join(names)}",
                )
            key, val = parse_param(value)
            bind_params(get_engine(target), {key: val}, f"engine {target!r}")  # bad keys fail before running
            params.setdefault(target, {})[key] = val
        usable_home()
        path = (output or run_dir(new_run_id()) / "report.json").absolute()
        probe_writable(path)
        report, skipped = bench_report(names, nums, runs, params, progress_printer("isa bench: "))
        save_report(report, path)
        matrix = report.experiments
        for n, why in skipped.items():
            err.print(f"[yellow]{n} not measured[/]: {why}")
        if plot is not None:
            plot_ns_per_instruction(matrix, str(plot))
    result_path = path
    shown = relative_to_cwd(result_path)
    err.print(f"report written to [bold]{shown}[/]" + (f", plot to [bold]{plot}[/]" if plot else ""))
    if json_out:
        emit_json(report)
        return
    out.print(_table(matrix, speedups(matrix), wide))


LEGEND = (
    "ms: median wall time of a run; ns/ins: per guest instruction; tr ms: of which translation; "
    "blocks: blocks translated; x sw: speed-up over switch; ok: final A and count match the oracle"
)


def _table(matrix: Any, speed: dict[str, dict[str, float]], wide: bool = False) -> Any:
    """Fits 80 columns; --wide adds chainings and generated code bytes."""
    from rich import box
    from rich.table import Table

    table = Table(title="ISA emulation: medians, translation included", box=box.SIMPLE_HEAD, padding=(0, 1))
    cols = ["engine", "S", "ms", "ns/ins", "tr ms", "blocks", "x sw", "ok"]
    if wide:
        cols[6:6] = ["chains", "code B"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("engine", "S", "ok") else "right", no_wrap=True)
    for name, group in matrix.items():
        for scen, exp in group.items():
            c = exp.counts
            tr = exp.stages.get("translate")
            row = [
                name,
                scen.lstrip("S"),
                f"{exp.summary.median * 1e3:.1f}",
                f"{exp.values['ns_per_instruction']:.1f}",
                f"{tr.summary.median * 1e3:.1f}" if tr else "-",
                str(c.get("blocks_translated", "-")),
                f"{speed[name][scen]:.2f}" if scen in speed.get(name, {}) else "-",
                "[green]ok[/]" if exp.values.get("matches_oracle") else "[red]WRONG[/]",
            ]
            if wide:
                row[6:6] = [str(c.get("chainings", "-")), str(c.get("code_bytes", "-"))]
            table.add_row(*row)
    import textwrap

    table.caption = "\n".join(textwrap.wrap(LEGEND, 76))  # the console does not wrap (soft_wrap)
    table.caption_justify = "left"
    return table


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="isa")
