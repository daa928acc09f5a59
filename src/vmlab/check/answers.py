"""The student's side of a lab's `[[questions]]`: the answers file, its template, and the sealed predictions.

The answers are a TOML file handed in as the lab's `answers` input, one table per question:

    [python-vs-true]
    answer = 12.5            # number: a TOML number; choice: one of the strings; text: a string

`vmlab lab run` parses it before anything runs (a malformed file is one UsageError line, exit 2) and
records every answer in `report.predictions` beside the input's sha256, so the grade never depends on
files beside the report. `vmlab lab predict` seals the numeric answers first (`SealedPredictions`);
the run records the sealed block too. Grading them is vmlab.check.questions'.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import textwrap
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vmlab.errors import UsageError
from vmlab.labs.model import (
    ChoiceQuestion,
    Lab,
    NumberQuestion,
    Question,
    TextQuestion,
)
from vmlab.report.model import SealedPredictions

Answer = float | str


# ---- the answers file ----------------------------------------------------------------------------


def _hint(lab: Lab) -> str:
    return f"'vmlab lab answers {lab.lab.name}' writes the template to fill in"


def parse_answers(text: str, lab: Lab, where: str) -> dict[str, Answer]:
    """Every answer given, by question id ("" means not answered and is left out).

    Raises one UsageError line naming the file, the table and what is wrong: an unknown question (a
    typo loses no points silently), a key other than `answer`, a number answered with a string, a
    choice that is not one of the choices.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{where} is not valid TOML: {e}", hint=_hint(lab)) from None
    except RecursionError:
        raise UsageError(f"{where} is not valid TOML: it nests too deep", hint=_hint(lab)) from None
    questions = {q.id: q for q in lab.questions}
    found: dict[str, Answer] = {}
    for qid, table in data.items():
        q = questions.get(qid)
        if q is None:
            known = ", ".join(questions) or "none"
            raise UsageError(
                f"{where}: [{qid}] is not a question of lab {lab.lab.name} (questions: {known})",
                hint=_hint(lab),
            )
        if not isinstance(table, dict):
            raise UsageError(f"{where}: {qid} must be a table, [{qid}] with answer = ...", hint=_hint(lab))
        extra = [k for k in table if k != "answer"]
        if extra:
            raise UsageError(f"{where}: [{qid}] has key {extra[0]!r}: only `answer` is allowed")
        if "answer" not in table:
            continue
        value = _answer(q, table["answer"], f"{where}: [{qid}] answer")
        if value is not None:
            found[qid] = value
    return found


def _answer(q: Question, value: Any, where: str) -> Answer | None:
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(q, NumberQuestion):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(
                f"{where} must be a number, not {value!r}", hint="write it without quotes, e.g. answer = 12.5"
            )
        if not math.isfinite(value):
            raise UsageError(f"{where} must be a finite number, not {value!r}")
        return float(value)
    if not isinstance(value, str):
        hint = 'write it in quotes, answer = "..."'
        raise UsageError(f"{where} must be a string, not {value!r}", hint=hint)
    if isinstance(q, ChoiceQuestion) and value not in q.choices:
        allowed = ", ".join(json.dumps(c, ensure_ascii=False) for c in q.choices)
        raise UsageError(f"{where} {value!r} is not one of the choices: {allowed}")
    return value if isinstance(q, ChoiceQuestion) else value.strip()


def read_answers(path: Path, lab: Lab) -> dict[str, Answer]:
    """Parse an answers file; every fault (unreadable, not UTF-8, malformed) is one UsageError line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} is not valid TOML: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    return parse_answers(text, lab, str(path))


def _toml_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a TOML basic string


def points_text(p: float) -> str:
    return f"{p:g} pt" if p == 1 else f"{p:g} pts"


def tolerance_text(q: NumberQuestion) -> str:
    parts = []
    if q.rel_tol is not None:
        parts.append(f"{q.rel_tol * 100:g} %")
    if q.abs_tol is not None:
        parts.append(f"{q.abs_tol:g} {q.unit}".rstrip())
    return " or ".join(parts)


def question_summary(q: Question) -> str:
    """What a question wants, for template comments and `vmlab lab show` (a choice's lines follow)."""
    if isinstance(q, NumberQuestion):
        target = q.path or q.expr
        seal = "; seal it before the run" if q.sealed else ""
        return (
            f"number [{q.unit}] · {points_text(q.points)} · compared with your measurement, {target} "
            f"(within {tolerance_text(q)}){seal}"
        )
    if isinstance(q, ChoiceQuestion):
        return f"choice · {points_text(q.points)} · one of:" + "".join(
            f"\n  {_toml_string(c)}" for c in q.choices
        )
    return f"written answer · {points_text(q.points)} · at least {q.min_words} words, graded by a tutor"


def answers_template(lab: Lab) -> str:
    """The answers file to fill in: one table per question, the prompt as a comment, `answer` empty.

    It parses as it is (every answer "": nothing answered), so a student can hand in a partial one.
    """
    name = lab.lab.name
    lines = [
        f"# Answers for lab {name}: {lab.lab.title}",
        f"# Written by `vmlab lab answers {name}`. Fill in each `answer`, then hand it in with the run:",
        f"#   vmlab lab run {name} --input answers=answers.toml",
        "# A number is a TOML number (answer = 12.5, no quotes), a choice one of the strings listed, a",
        '# written answer goes between the triple quotes. An answer left "" scores 0.',
        "# Seal your predictions (the numbers) before you measure:",
        f"#   vmlab lab predict {name} --input answers=answers.toml -o sealed.json",
        f"#   vmlab lab run {name} --input answers=answers.toml --predictions sealed.json",
    ]
    for task in lab.tasks:
        qs = [q for q in lab.questions if q.task == task.id]
        if not qs:
            continue
        lines += ["", f"# ==== {task.id}: {task.title}"]
        for q in qs:
            lines += ["", f"[{q.id}]", *(f"# {line}" for line in question_summary(q).splitlines())]
            for para in q.prompt.strip().splitlines() or [""]:
                lines += [f"# {w}" for w in textwrap.wrap(para, 96)] or ["#"]
            lines.append('answer = """\n"""' if isinstance(q, TextQuestion) else 'answer = ""')
    return "\n".join(lines) + "\n"


# ---- predictions, sealed before the run ----------------------------------------------------------


def numeric_answers(lab: Lab, answers: Mapping[str, Answer]) -> dict[str, float]:
    numbers = {q.id for q in lab.questions if isinstance(q, NumberQuestion)}
    return {k: float(v) for k, v in answers.items() if k in numbers and isinstance(v, int | float)}


def seal(lab: Lab, path: Path, now: dt.datetime | None = None) -> SealedPredictions:
    """The numeric answers of an answers file, with its sha256 and the time (UTC)."""
    from vmlab.labs.step import sha256_file

    answers = read_answers(path, lab)
    if not any(isinstance(q, NumberQuestion) for q in lab.questions):
        raise UsageError(f"lab {lab.lab.name} asks no number question: there is nothing to seal")
    values = numeric_answers(lab, answers)
    if not values:
        raise UsageError(
            f"{path}: no number question is answered: there is nothing to seal",
            hint="write your predictions (answer = 12.5) first",
        )
    return SealedPredictions(
        lab=lab.lab.name, sealed_at=now or dt.datetime.now(dt.UTC), sha256=sha256_file(path), values=values
    )


def read_sealed(path: Path, lab: Lab) -> SealedPredictions:
    """A sealed predictions file for this lab, or one UsageError line."""
    hint = f"'vmlab lab predict {lab.lab.name} --input answers=FILE -o {path.name}' writes one"
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"--predictions {path}: cannot read it: {e.strerror}", hint=hint) from None
    try:
        sealed = SealedPredictions.model_validate_json(raw)
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "<top>"
        raise UsageError(
            f"--predictions {path}: not a sealed predictions file: {key}: {first['msg']}", hint=hint
        ) from None
    if sealed.lab != lab.lab.name:
        raise UsageError(f"--predictions {path}: sealed for lab {sealed.lab!r}, not {lab.lab.name!r}")
    return sealed


def seal_differences(sealed: SealedPredictions, lab: Lab, answers: Mapping[str, Answer]) -> list[str]:
    """Where the sealed numbers and the answers' numbers differ ("q: sealed 12, answered 15")."""
    now = numeric_answers(lab, answers)
    diffs = []
    for qid in sorted(set(sealed.values) | set(now)):
        before, after = sealed.values.get(qid), now.get(qid)
        if before is None or after is None or not math.isclose(before, after, rel_tol=1e-12, abs_tol=0.0):
            said = [
                f"{w} {'nothing' if v is None else f'{v:g}'}"
                for w, v in (("sealed", before), ("answered", after))
            ]
            diffs.append(f"{qid}: " + ", ".join(said))
    return diffs
