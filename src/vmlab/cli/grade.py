"""`vmlab grade`: grade a whole class of hand-ins; `grade merge` joins shards; `grade sign` and
`grade keygen` for runners that sign the reports they produce.

`vmlab grade HAND_INS... -o OUT/` is short for `vmlab grade class ...`. Exit codes: 0 the class was
graded (students' verdicts are in OUT/, not in the exit code), 2 bad input, 3 with --fail-on-flags when
some hand-in is held, flagged or invalid, 4 when Docker failed during --rerun.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from vmlab.cli.grade_output import finish
from vmlab.cli.output import emit_json, err, errors_to_exit, fail, out, progress_printer

if TYPE_CHECKING:
    pass


class _DefaultClass(TyperGroup):
    """`vmlab grade ARGS` runs `vmlab grade class ARGS` unless ARGS starts with a subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: this Typer's own click Context
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["class", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_DefaultClass,
    help="Grade a class of hand-ins (reports with their artifacts/) for CI and course platforms.",
    no_args_is_help=True,
)

OutOpt = Annotated[
    Path, typer.Option("--output", "-o", help="Folder for class.json, class.csv, junit.xml, gradescope/.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the class summary as JSON.")]
DecisionsOpt = Annotated[
    Path | None,
    typer.Option("--decisions", help="The tutor's decisions.toml (hand-in -> accept | zero | points)."),
]
RubricOpt = Annotated[
    Path | None,
    typer.Option(
        "--rubric", help="The tutor's rubric.csv: points for written answers (handin,question,points)."
    ),
]
RosterOpt = Annotated[
    Path | None,
    typer.Option("--roster", help="roster.csv: hand-in folder, login or e-mail -> student id."),
]
FailOnFlagsOpt = Annotated[
    bool, typer.Option("--fail-on-flags", help="Exit 3 when some hand-in is held, flagged or invalid.")
]
CompareOpt = Annotated[
    Path | None,
    typer.Option(
        "--compare-to", help="An earlier class.json: show each student's score change (regrade preview)."
    ),
]


@app.command("class")
def grade_class_cmd(
    hand_ins: Annotated[
        list[Path], typer.Argument(help="Report files, or folders of hand-ins (one per student).")
    ],
    output: OutOpt,
    lab: Annotated[
        str | None,
        typer.Option("--lab", help="The lab to grade against (default: the one all reports name)."),
    ] = None,
    shard: Annotated[
        str | None, typer.Option("--shard", help="Grade slice i of N (i/N), for CI matrices.")
    ] = None,
    rerun: Annotated[
        bool, typer.Option("--rerun", help="Re-run submitted code on hidden inputs (needs Docker).")
    ] = False,
    secret_file: Annotated[
        Path | None,
        typer.Option("--secret-file", help="The tutor's secret (mode 0600) the hidden inputs come from."),
    ] = None,
    require_signature: Annotated[
        bool, typer.Option("--require-signature", help="Flag every report not signed with --key-file.")
    ] = False,
    key_file: Annotated[
        Path | None, typer.Option("--key-file", help="The runners' signing key (mode 0600).")
    ] = None,
    timing: Annotated[
        str, typer.Option("--timing", help="graded or advisory (timing checks shown, not counted).")
    ] = "graded",
    task: Annotated[
        list[str] | None,
        typer.Option("--task", help="Grade only this task (repeatable; default: every task of the lab)."),
    ] = None,
    on_flag: Annotated[
        str,
        typer.Option(
            "--on-flag", help="A flagged hand-in's score: review (held), zero (0 published) or keep."
        ),
    ] = "review",
    held_output: Annotated[
        str,
        typer.Option("--held-output", help="Gradescope file of a held hand-in: zero (score 0) or none."),
    ] = "zero",
    decisions: DecisionsOpt = None,
    rubric: RubricOpt = None,
    roster: RosterOpt = None,
    near_copies: Annotated[
        str,
        typer.Option(
            "--near-copies",
            help="Compare hand-ins for near-copies: all (code and samples), samples, or none.",
        ),
    ] = "all",
    term: Annotated[
        str | None,
        typer.Option(
            "--term",
            envvar="VMLAB_TERM",
            help="Term of the per-student variants (default: the lab's).",
        ),
    ] = None,
    compare_to: CompareOpt = None,
    fail_on_flags: FailOnFlagsOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Grade every hand-in: verdicts, flags, CSV, JUnit and Gradescope files in OUT/."""
    from vmlab.grade.classgrade import GradeRequest, grade_class, parse_shard
    from vmlab.grade.model import ClassOptions
    from vmlab.grade.publish import read_decisions
    from vmlab.grade.roster import read_roster
    from vmlab.grade.rubric import read_rubric
    from vmlab.grade.sign import read_key
    from vmlab.report.model import parse_timing

    with errors_to_exit():
        chosen_timing = parse_timing(timing)
    if on_flag not in ("review", "zero", "keep"):
        raise fail(f"--on-flag {on_flag!r}: use review, zero or keep")
    if held_output not in ("zero", "none"):
        raise fail(f"--held-output {held_output!r}: use zero or none")
    if near_copies not in ("all", "samples", "none"):
        raise fail(f"--near-copies {near_copies!r}: use all, samples or none")
    if rerun and secret_file is None:
        raise fail("--rerun needs --secret-file KEY (fix: vmlab grade keygen KEY, kept on the runner only)")
    if require_signature and key_file is None:
        raise fail("--require-signature needs --key-file KEY (the key the runners sign with)")
    with errors_to_exit():
        req = GradeRequest(
            hand_ins=hand_ins,
            lab=lab,
            options=ClassOptions(
                timing=chosen_timing,
                rerun=rerun,
                require_signature=require_signature,
                tasks=list(dict.fromkeys(task or [])),
                on_flag=on_flag,  # type: ignore[arg-type]
                held_output=held_output,  # type: ignore[arg-type]
                roster=roster is not None,
                near_copies=near_copies,  # type: ignore[arg-type]
                term=term,
            ),
            shard=parse_shard(shard) if shard else None,
            signature_key=read_key(key_file) if key_file else None,
            rerun_secret=read_key(secret_file) if secret_file else None,
            roster=read_roster(roster) if roster else None,
            decisions=read_decisions(decisions) if decisions else {},
            rubric=read_rubric(rubric) if rubric else None,
        )
        result = grade_class(req, progress=progress_printer("grade: "))
    finish(result, output, compare_to, json_out, fail_on_flags)


@app.command("merge")
def merge_cmd(
    shards: Annotated[list[Path], typer.Argument(help="Each shard's OUT/ folder or its class.json.")],
    output: OutOpt,
    decisions: DecisionsOpt = None,
    rubric: RubricOpt = None,
    roster: RosterOpt = None,
    compare_to: CompareOpt = None,
    fail_on_flags: FailOnFlagsOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Join the shards of one class; class-wide flags (copies across shards), the policy, the
    tutor's decisions and rubric points are applied again."""
    from vmlab.grade.classgrade import merge
    from vmlab.grade.outputs import read_class
    from vmlab.grade.publish import read_decisions
    from vmlab.grade.roster import read_roster
    from vmlab.grade.rubric import read_rubric

    with errors_to_exit():
        result = merge(
            [read_class(p) for p in shards],
            read_decisions(decisions) if decisions else None,
            read_roster(roster) if roster else None,
            read_rubric(rubric) if rubric else None,
        )
    finish(result, output, compare_to, json_out, fail_on_flags)


@app.command("sign")
def sign_cmd(
    reports: Annotated[list[Path], typer.Argument(help="Reports this runner produced itself.")],
    key_file: Annotated[Path, typer.Option("--key-file", help="The runner's signing key (mode 0600).")],
    json_out: JsonOpt = False,
) -> None:
    """Sign reports with HMAC-SHA256 (see docs/grading.md for what a signature proves)."""
    from vmlab.grade.sign import read_key, sign_file

    with errors_to_exit():
        key = read_key(key_file)
        done = {str(p): sign_file(p, key)["key_id"] for p in reports}
    if json_out:
        emit_json({"signed": [{"report": p, "key_id": k} for p, k in done.items()]})
    else:
        for p, k in done.items():
            out.print(f"signed {p} (key {k})", highlight=False)


@app.command("calibrate")
def calibrate_cmd(
    lab: Annotated[str, typer.Option("--lab", help="The measurement lab whose timed figures to measure.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Where to write it (default $VMLAB_HOME/calibration/<lab>.json)."
        ),
    ] = None,
    runs: Annotated[
        int | None,
        typer.Option("--runs", min=1, help="Runs (repeats) per timed step (default: the lab's)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the calibration as JSON.")] = False,
) -> None:
    """Measure this runner's medians of a lab's timed figures once, for --rerun's timing ratios."""
    from vmlab.grade.calibration import run_calibration

    with errors_to_exit():
        cal, path = run_calibration(lab, output, runs, progress_printer("calibrate: "))
    if json_out:
        emit_json({"path": str(path), **cal.model_dump(mode="json")})
        return
    from rich.table import Table

    t = Table(title=f"{lab}: this runner's baseline", title_justify="left")
    t.add_column("figure", overflow="fold", max_width=50)
    t.add_column("median", justify="right")
    for name, median in cal.medians.items():
        t.add_row(name, f"{median:.6g}")
    out.print(t)
    err.print(f"wrote {path} (host {cal.host.get('hostname', '?')}, {cal.fingerprint[:12]})", highlight=False)


@app.command("keygen")
def keygen_cmd(path: Annotated[Path, typer.Argument(help="Where to write the new key (mode 0600).")]) -> None:
    """Write a new random key for --secret-file or --key-file; never overwrites a file."""
    from vmlab.grade.sign import key_id, read_key, write_key

    try:
        write_key(path)
    except FileExistsError:
        raise fail(f"{path} exists; a key is never overwritten (fix: choose another path)") from None
    with errors_to_exit():
        err.print(
            f"wrote {path} (key {key_id(read_key(path))}); keep it on the runner, never in a repository"
        )


def register(app_: typer.Typer) -> None:
    app_.add_typer(app, name="grade")
