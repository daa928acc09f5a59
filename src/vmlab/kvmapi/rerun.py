"""Tutors' re-run of a student's guest program on a hidden line (`vmlab grade --rerun`, lab.toml `[rerun]`).

Host side, `rerun(ctx)`: the line is derived from the tutor's secret and the student id (printable ASCII,
a length in the lab's range, ending in a newline); the student's recorded program runs in the sandbox
with /dev/kvm under vmlab's own VMM; the check compares what the guest printed with the line, byte for
byte, and its exits with the budget. Container side, `main()` (`python -m vmlab.kvmapi.rerun`): load
the program, place the line at 0x8000, run it once, print one JSON line with the output and the exits.

The student hands in a guest program, not Python, so nothing of theirs can import vmlab: the lab declares
no `[rerun] solutions` and no import guard is needed. Its `[rerun] modules` (this module, vmlab.kvmapi.lab,
.vmm, .programs) are what `main()` imports, so the shared, pruned re-run image is planned to hold them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from vmlab.grade.rerun import RerunContext
    from vmlab.report.model import CheckResult

_PRINTABLE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,:;-+=!?"


class RerunParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_exits: int = Field(3, ge=1)
    min_length: int = Field(16, ge=1)
    max_length: int = Field(72, ge=1, le=4096)


def hidden_line(raw: bytes, p: RerunParams) -> bytes:
    """A line from derived bytes: first byte picks the length, the rest the characters; then a newline."""
    length = p.min_length + raw[0] % (p.max_length - p.min_length + 1)
    body = "".join(_PRINTABLE[b % len(_PRINTABLE)] for b in raw[1 : 1 + length])
    return (body + "\n").encode()


def rerun(ctx: RerunContext) -> list[CheckResult]:
    p = RerunParams.model_validate(ctx.spec.params)
    line = hidden_line(ctx.derive("line", 1 + p.max_length), p)
    program = ctx.inputs["program"]
    ctx.progress(f"{ctx.student}: guest program {program.name} on a hidden line of {len(line)} bytes")
    name = "program" + program.suffix.lower()
    res = ctx.run(
        ["-m", "vmlab.kvmapi.rerun", "--program", f"/in/{name}", "--line", "/in/line"],
        {name: program.read_bytes(), "line": line},
    )
    desc = "your guest prints a hidden line the VMM placed at 0x8000"
    if res.timed_out:
        return [
            ctx.check("hidden-line", False, f"no result within {ctx.spec.timeout_s:g} s", description=desc)
        ]
    data = res.result_json()
    if data is None:
        msg = f"the container exited {res.rc} without a result: {res.stderr_tail()}"
        return [ctx.check("hidden-line", None, msg)]
    if data.get("unavailable"):
        return [ctx.check("hidden-line", None, f"not gradable on this runner: {data['unavailable']}")]
    if "error" in data:
        return [
            ctx.check("hidden-line", False, f"the guest failed: {str(data['error'])[:200]}", description=desc)
        ]
    printed = bytes.fromhex(str(data.get("output", "")))
    own = ctx.report.experiments.get("own-program")
    said_ok = getattr(own, "values", {}).get("output_ok") is True
    said_exits = getattr(own, "counts", {}).get("user_exits")
    said_budget = isinstance(said_exits, int) and 0 < said_exits <= p.max_exits
    exits = int(data.get("user_exits", -1))
    same = printed == line
    return [
        ctx.check(
            "hidden-line",
            same,
            "" if same else f"printed {len(printed)} bytes that differ from the {len(line)}-byte hidden line",
            claimed=said_ok,
            measured=f"{len(printed)} bytes",
            expected="exactly the hidden line",
            description=desc,
        ),
        ctx.check(
            "exit-budget",
            0 < exits <= p.max_exits,
            "" if 0 < exits <= p.max_exits else f"{exits} exits on the hidden line",
            claimed=said_budget,
            measured=exits,
            expected=f"in [1, {p.max_exits}]",
            description=f"at most {p.max_exits} exits on the hidden line too",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """Inside the container: one run of the program on the given line, one JSON line out."""
    parser = argparse.ArgumentParser(prog="python -m vmlab.kvmapi.rerun")
    parser.add_argument("--program", type=Path, required=True)
    parser.add_argument("--line", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args(argv)

    from vmlab.errors import NotAvailable, VmlabError
    from vmlab.kvmapi.guest import from_file
    from vmlab.kvmapi.lab import LINE_ADDR
    from vmlab.kvmapi.vmm import Limits, run_program

    line = args.line.read_bytes()
    out: dict[str, Any]
    with contextlib.redirect_stdout(sys.stderr):
        try:
            program = from_file(args.program)
            run = run_program(
                program,
                limits=Limits(wall_s=args.timeout),
                debugfs=False,
                preload={LINE_ADDR: len(line).to_bytes(2, "little") + line},
            )
            out = {"output": run.output.hex(), "user_exits": run.total_exits, "stop": run.stop}
        except NotAvailable as e:
            out = {"unavailable": e.one_line()}
        except VmlabError as e:
            out = {"error": e.one_line()}
        except Exception as e:
            out = {"error": f"{type(e).__name__}: {e}"}
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
