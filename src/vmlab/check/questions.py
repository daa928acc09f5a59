"""The student's own work: answers to a lab's `[[questions]]`, their template, sealing and grading.

The answers are a TOML file handed in as the lab's `answers` input, one table per question:

    [python-vs-true]
    answer = 12.5            # number: a TOML number; choice: one of the strings; text: a string

`vmlab lab run` parses it before anything runs (a malformed file is one UsageError line, exit 2) and
records every answer in `report.predictions` beside the input's sha256, so the grade never depends on
files beside the report. `vmlab lab predict` seals the numeric answers first (`SealedPredictions`);
the run records the sealed block too.

Grading (`question_results`, called by vmlab.check.grader.grade_report), one result per question:

    q:<id>, kind "question"       number: pass when |answer - measured| <= max(rel_tol * |measured|,
                                  abs_tol), measured being the student's own figure at `path` (or
                                  `expr`); the message shows predicted vs measured (vs `published`).
                                  choice: pass when it equals the tutors' key, labs/<lab>/solution/
                                  answers.toml; a key that is missing is `error` ("cannot grade:", the
                                  tutor's fault, held for review by `vmlab grade`), never a pass.
    q:<id>, kind "question-text"  pass when present with at least `min_words` words; it scores 0 of
                                  its points until a tutor grades it (a rubric adds them later).

A missing answers input or a missing answer fails with 0 of the question's points (fail closed): the
points possible are the lab's. A number question whose step did not run is skipped (0 points, as
checks are). One more result, `answers` (kind "answers", required, 0 points), is added when answers
were handed in: the recorded answers must be the answers input's (same sha256, and the same content
when the file is beside the report), and a sealed block must hold the same numbers and predate the
run. A broken record scores every question 0; a broken seal scores the number questions 0.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import textwrap
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vmlab.errors import LabError, UsageError
from vmlab.report.model import CheckResult, Outcome, Predictions, Report, SealedPredictions
from vmlab.spec.expr import Evaluation, ExprError, compile_expr, evaluate
from vmlab.spec.lab import (
    ANSWERS_INPUT,
    ChoiceQuestion,
    Lab,
    NumberQuestion,
    Question,
    TextQuestion,
)
from vmlab.spec.paths import PathMissing, number, parse_path

QUESTION = "question"  # CheckResult.kind of a number or choice question
QUESTION_TEXT = "question-text"  # a written answer: presence is automatic, its points are a tutor's
ANSWERS_CHECK = "answers"  # id and kind of the check on the recorded answers and their seal
PREFIX = "q:"  # a question's result id is q:<question id>

Answer = float | str
AnswerKey = dict[str, str]


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


def _points(p: float) -> str:
    return f"{p:g} pt" if p == 1 else f"{p:g} pts"


def _tolerance(q: NumberQuestion) -> str:
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
            f"number [{q.unit}] · {_points(q.points)} · compared with your measurement, {target} "
            f"(within {_tolerance(q)}){seal}"
        )
    if isinstance(q, ChoiceQuestion):
        return f"choice · {_points(q.points)} · one of:" + "".join(
            f"\n  {_toml_string(c)}" for c in q.choices
        )
    return f"written answer · {_points(q.points)} · at least {q.min_words} words, graded by a tutor"


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


# ---- the answer key (tutors) ---------------------------------------------------------------------


def load_answer_key(lab: Lab) -> tuple[AnswerKey, str | None]:
    """The tutors' key of the choice questions and, when it cannot be used, why (for every `error`)."""
    from vmlab.labs.catalog import answer_key_path

    try:
        path = answer_key_path(lab.lab.name)
    except LabError:
        return {}, f"lab {lab.lab.name} has no folder here, so no answer key"
    shown = f"labs/{lab.lab.name}/{path.parent.name}/{path.name}"
    if not path.is_file():
        return {}, f"no answer key here ({shown} is tutors' material, left out of a student's kit)"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as e:
        return {}, f"the answer key {shown} is not valid TOML: {e}"
    except OSError as e:
        return {}, f"cannot read the answer key {shown}: {e.strerror}"
    key: AnswerKey = {}
    for qid, table in data.items():
        if isinstance(table, dict) and isinstance(table.get("answer"), str):
            key[qid] = table["answer"]
    return key, None


# ---- grading -------------------------------------------------------------------------------------


@dataclass
class _Record:
    """What the report holds of the answers, and what is wrong with it."""

    answers: dict[str, Answer] | None  # None: no answers handed in
    broken: str | None = None  # the record cannot be trusted: every question scores 0
    seal_broken: str | None = None  # the seal does not hold: the number questions score 0
    notes: tuple[str, ...] = ()


def _record(report: Report, lab: Lab, report_dir: Path | None) -> _Record:
    rec = report.inputs.get(ANSWERS_INPUT)
    preds: Predictions | None = report.predictions
    if rec is None and preds is None:
        return _Record(None)
    if preds is None:
        return _Record({}, broken="the report records an answers input but not its answers")
    if rec is None:
        return _Record(preds.answers, broken="the report records answers but no answers input")
    if preds.sha256 != rec.sha256:
        why = "the recorded answers are not those of the answers input (sha256)"
        return _Record(preds.answers, broken=why)
    notes: list[str] = []
    broken = _compare_with_file(preds, lab, report_dir, rec.artifact, notes)
    seal_broken = None
    s = preds.sealed
    if s is not None:
        problems = []
        if s.lab != report.lab:
            problems.append(f"sealed for lab {s.lab!r}")
        if s.sealed_at > report.created_at:
            problems.append(
                f"sealed at {s.sealed_at.isoformat(timespec='seconds')}, after the run started at "
                f"{report.created_at.isoformat(timespec='seconds')}"
            )
        diffs = seal_differences(s, lab, preds.answers)
        if diffs:
            more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
            problems.append("the sealed numbers differ from the answers: " + "; ".join(diffs[:3]) + more)
        elif s.sha256 != preds.sha256:
            notes.append("the answers file changed after sealing, its numbers did not")
        seal_broken = "; ".join(problems) or None
    return _Record(preds.answers, broken=broken, seal_broken=seal_broken, notes=tuple(notes))


def _compare_with_file(
    preds: Predictions, lab: Lab, report_dir: Path | None, artifact: str, notes: list[str]
) -> str | None:
    """The recorded answers are the file's (when it is beside the report; else a note)."""
    if report_dir is None:
        return None
    folder = report_dir.resolve()
    path = report_dir / artifact
    if not path.resolve().is_relative_to(folder) or not path.is_file():
        notes.append(f"{artifact} is not beside the report: the recorded answers were not compared with it")
        return None  # a symlink out or an absent listed file is the integrity check's to fail
    try:
        again = read_answers(path, lab)
    except UsageError as e:
        return f"the answers file no longer parses: {e.one_line()}"
    if again != preds.answers:
        differ = sorted(k for k in set(again) | set(preds.answers) if again.get(k) != preds.answers.get(k))
        return f"the answers recorded in the report differ from {artifact} ({', '.join(differ[:5])})"
    return None


def question_results(
    report: Report,
    lab: Lab,
    *,
    report_dir: Path | None = None,
    answer_key: AnswerKey | None = None,
    legacy: bool = False,
) -> tuple[list[CheckResult], CheckResult | None]:
    """One result per question, and the `answers` check (None when no answers were handed in).

    Never raises: a grader fault is an `error` outcome, as for checks.
    """
    if not lab.questions:
        return [], None
    record = _record(report, lab, report_dir)
    key_problem: str | None = None
    if answer_key is None and any(isinstance(q, ChoiceQuestion) for q in lab.questions):
        answer_key, key_problem = load_answer_key(lab)
    results = [_guarded(q, report, lab, record, answer_key or {}, key_problem, legacy) for q in lab.questions]
    check = None
    if record.answers is not None:
        problems = [p for p in (record.broken, record.seal_broken) if p]
        check = CheckResult(
            id=ANSWERS_CHECK,
            kind=ANSWERS_CHECK,
            description="the recorded answers are the answers input's; a seal holds and predates the run",
            required=True,
            outcome="fail" if problems else "pass",
            points=0.0,
            measured={
                "answers": len(record.answers),
                "sealed": report.predictions is not None and report.predictions.sealed is not None,
            },
            expected="the answers input's answers; a seal with the same numbers, made before the run",
            message="; ".join(problems) if problems else "; ".join(f"note: {n}" for n in record.notes),
        )
    return results, check


def _guarded(
    q: Question,
    report: Report,
    lab: Lab,
    record: _Record,
    key: AnswerKey,
    key_problem: str | None,
    legacy: bool,
) -> CheckResult:
    base: dict[str, Any] = dict(
        id=f"{PREFIX}{q.id}",
        kind=QUESTION_TEXT if isinstance(q, TextQuestion) else QUESTION,
        task=q.task,
        description=q.prompt.strip(),
        required=q.required,
        points=q.points,
    )
    try:
        outcome, score, measured, expected, message = _grade(q, report, lab, record, key, key_problem, legacy)
    except Exception as e:  # a grader fault is never the student's loss
        outcome, score, measured, expected = "error", 0.0, None, ""
        message = f"grader error: {type(e).__name__}: {e}"
    return CheckResult(
        **base, outcome=outcome, score=score, measured=measured, expected=expected, message=message
    )


_Graded = tuple[Outcome, float, Any, str, str]


def _grade(
    q: Question,
    report: Report,
    lab: Lab,
    record: _Record,
    key: AnswerKey,
    key_problem: str | None,
    legacy: bool,
) -> _Graded:
    expected = _expected(q, key)
    if record.answers is None:
        why = (
            f"no answers handed in: 0 of {_points(q.points)} (run with --input {ANSWERS_INPUT}=FILE; "
            f"'vmlab lab answers {lab.lab.name}' writes the template)"
        )
        return "fail", 0.0, None, expected, why
    if record.broken is not None:
        return "fail", 0.0, None, expected, f"not graded: {record.broken}"
    given = record.answers.get(q.id)
    if given is None:
        why = f"not answered: 0 of {_points(q.points)} ([{q.id}] answer is empty)"
        return "fail", 0.0, None, expected, why
    if isinstance(q, NumberQuestion):
        return _grade_number(q, given, report, lab, record, legacy)
    if isinstance(q, ChoiceQuestion):
        if key_problem is not None or q.id not in key:
            why = key_problem or "the answer key has no entry for this question"
            return "error", 0.0, given, expected, f"cannot grade: {why}"
        if key[q.id] not in q.choices:
            why = f"the key's {key[q.id]!r} is not one of the choices"
            return "error", 0.0, given, expected, f"cannot grade: {why}"
        if given == key[q.id]:
            return "pass", q.points, given, expected, ""
        return "fail", 0.0, given, expected, f"answered {given!r}, the key says {key[q.id]!r}"
    words = len(str(given).split())
    if words < q.min_words:
        return "fail", 0.0, f"{words} words", expected, f"{words} words, at least {q.min_words} wanted"
    why = f"{words} words: a tutor grades this answer (0 of {_points(q.points)} until then)"
    return "pass", 0.0, f"{words} words", expected, why


def _expected(q: Question, key: AnswerKey) -> str:
    if isinstance(q, NumberQuestion):
        return f"your prediction within {_tolerance(q)} of your measurement"
    if isinstance(q, ChoiceQuestion):
        return f"== {key[q.id]!r}" if q.id in key else "the tutors' key"
    return f"at least {q.min_words} words (graded by a tutor)"


def _grade_number(
    q: NumberQuestion, given: Answer, report: Report, lab: Lab, record: _Record, legacy: bool
) -> _Graded:
    expected = _expected(q, {})
    if isinstance(given, str):
        return "fail", 0.0, None, expected, f"the recorded answer {given!r} is not a number"
    predicted = float(given)
    if record.seal_broken is not None:
        return "fail", 0.0, None, expected, f"not graded: the seal does not hold: {record.seal_broken}"
    sealed = report.predictions.sealed if report.predictions is not None else None
    if q.sealed and (sealed is None or q.id not in sealed.values):
        why = (
            f"this prediction counts only when sealed before the run ('vmlab lab predict {lab.lab.name}"
            " --input answers=FILE -o sealed.json', then 'vmlab lab run ... --predictions sealed.json')"
        )
        return "fail", 0.0, None, expected, why
    if not legacy:
        from vmlab.check.grader import paths_gate

        gate = paths_gate([parse_path(p) for p in q.path_texts()], q.task, report, lab)
        if gate is not None:
            outcome, why = gate
            return outcome, 0.0, None, expected, f"{why}: nothing to compare your {predicted:g} with"
    try:
        measured = _figure(q, report)
    except PathMissing as e:
        return "fail", 0.0, None, expected, f"predicted {predicted:g} {q.unit}, but {e}"
    except ExprError as e:
        return "error", 0.0, None, expected, f"cannot grade: {e}"
    ok = abs(predicted - measured) <= max((q.rel_tol or 0.0) * abs(measured), q.abs_tol or 0.0)
    return (
        "pass" if ok else "fail",
        q.points if ok else 0.0,
        round(measured, 6),
        expected,
        _versus(q, predicted, measured),
    )


def _figure(q: NumberQuestion, report: Report) -> float:
    if q.path is not None:
        return number(report, q.path)
    value = evaluate(compile_expr(q.expr or ""), Evaluation(report))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExprError(f"{q.expr!r} gives {value!r}, not a number")
    return float(value)


def _versus(q: NumberQuestion, predicted: float, measured: float) -> str:
    """predicted vs measured (vs published): the feedback a prediction is for."""
    unit = "" if not q.unit else (q.unit if q.unit == "x" else f" {q.unit}")
    if measured:
        pct = (predicted - measured) / abs(measured) * 100
        off = "within 1 %" if abs(pct) < 0.5 else f"off by {pct:+.0f} %"
    else:
        off = f"off by {predicted - measured:+g}{unit}"
    text = f"predicted {predicted:g}{unit}, measured {measured:g}{unit}: {off} (tolerance {_tolerance(q)})"
    if q.published is not None:
        ratio = f", yours is {measured / q.published:.2g}x it" if q.published else ""
        text += f"; published {q.published:g}{unit} ({q.source}){ratio}"
    return text
