"""`vmlab --help` against a bare Typer app of the same shape, in alternating runs, medians of each.

The bare app has vmlab's top-level names and one-line helps (a group is a group holding one command,
a command is a command) and nothing else: no lab logic, no imports beyond typer. Both run as a fresh
`python -c` with the same interpreter, so what the ratio says is what vmlab's own start-up adds to
Typer's. The goal the issue sets (issue 20, item 5): ratio <= 1.3. Recorded, never asserted.

    PYTHONPATH=src .venv/bin/python -m tests.perf.helpstartup --runs 21
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[2] / "src"
VMLAB = "from vmlab.cli.main import main; main()"


def shape() -> list[tuple[str, str, bool]]:
    """(name, one-line help, is a group) of each top-level entry of vmlab's CLI, in its order."""
    import typer
    from typer import _click
    from typer.core import TyperGroup

    from vmlab.cli.main import app

    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    ctx = _click.Context(root)
    entries = []
    for name in root.list_commands(ctx):
        cmd = root.get_command(ctx, name)
        assert cmd is not None, name
        entries.append((name, cmd.get_short_help_str(limit=300), isinstance(cmd, TyperGroup)))
    return entries


def bare_app(entries: list[tuple[str, str, bool]]) -> str:
    """The source of a Typer app with these entries and no logic (what a `--help` costs by itself)."""
    lines = [
        "import typer",
        "app = typer.Typer(name='vmlab', help='Learn how virtual machines work by measuring them.',",
        "                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)",
        "@app.callback()",
        "def _root(debug: bool = typer.Option(False, '--debug', help='Show tracebacks and debug logs.'),",
        "          version: bool = typer.Option(False, '--version', help='Print the version.')) -> None:",
        "    pass",
    ]
    for i, (name, short, group) in enumerate(entries):
        if group:
            lines += [
                f"g{i} = typer.Typer(help={short!r}, no_args_is_help=True)",
                f"@g{i}.command('one')",
                f"def g{i}_one(x: int = typer.Option(1, '--x', help='A number.')) -> None:",
                "    pass",
                f"app.add_typer(g{i}, name={name!r})",
            ]
        else:
            lines += [
                f"@app.command({name!r}, help={short!r})",
                f"def c{i}(x: int = typer.Option(1, '--x', help='A number.')) -> None:",
                "    pass",
            ]
    lines.append("app()")
    return "\n".join(lines) + "\n"


def listed(help_text: str) -> list[str]:
    """The command names of a rich `--help` (the first word of each row of the Commands panel)."""
    names: list[str] = []
    inside = False
    for line in help_text.splitlines():
        if "Commands" in line and line.lstrip().startswith("╭"):
            inside = True
        elif inside and line.lstrip().startswith("╰"):
            inside = False
        elif inside:
            m = re.match(r"\s*│ (\S+)\s", line)
            if m:
                names.append(m.group(1))
    return names


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(SRC), COLUMNS="80", TERM="dumb")
    env.pop("PYTHONSTARTUP", None)
    return env


def _once(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    return time.perf_counter() - t0, p


def run(runs: int, workdir: Path) -> dict[str, Any]:
    """Alternate `vmlab --help` and the bare app's `--help` `runs` times each (after one warm-up of
    each, so both read from the page cache); medians, the ratio, and both command lists."""
    entries = shape()
    bare = workdir / "bare_app.py"
    bare.write_text(bare_app(entries))
    env = _env()
    argv_v = [sys.executable, "-c", VMLAB, "--help"]
    argv_b = [sys.executable, str(bare), "--help"]
    _, pv = _once(argv_v, env)
    _, pb = _once(argv_b, env)
    ts_v, ts_b = [], []
    for _ in range(runs):
        t, p = _once(argv_v, env)
        ts_v.append(t)
        pv = p if p.returncode else pv
        t, p = _once(argv_b, env)
        ts_b.append(t)
        pb = p if p.returncode else pb
    mv, mb = statistics.median(ts_v), statistics.median(ts_b)
    return {
        "runs": runs,
        "vmlab_help_s": [round(x, 4) for x in ts_v],
        "bare_help_s": [round(x, 4) for x in ts_b],
        "vmlab_median_s": round(mv, 4),
        "bare_median_s": round(mb, 4),
        "ratio": round(mv / mb, 3),
        "vmlab_rc": pv.returncode,
        "bare_rc": pb.returncode,
        "vmlab_listed": listed(pv.stdout),
        "bare_listed": listed(pb.stdout),
        "vmlab_stderr": pv.stderr[-2000:],
        "bare_stderr": pb.stderr[-2000:],
    }


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        r = run(a.runs, Path(d))
    if a.json:
        print(json.dumps(r))
    else:
        vmlab_ms, bare_ms = r["vmlab_median_s"] * 1000, r["bare_median_s"] * 1000
        print(
            f"vmlab --help {vmlab_ms:.0f} ms, bare Typer app {bare_ms:.0f} ms, ratio {r['ratio']:.2f}"
            f" (median of {r['runs']}; goal <= 1.3)"
        )


if __name__ == "__main__":
    main()
