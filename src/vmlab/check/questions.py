"""Grading the student's answers to a lab's `[[questions]]` (the answers file and its seal are
vmlab.check.answers'), against their own measurements and the tutors' answer key.

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

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmlab.check.answers import Answer, points_text, read_answers, seal_differences, tolerance_text
from vmlab.check.expr import Evaluation, ExprError, compile_expr, evaluate
from vmlab.check.paths import PathMissing, number, parse_path
from vmlab.errors import LabError, UsageError
from vmlab.labs.model import (
    ANSWERS_INPUT,
    ChoiceQuestion,
    Lab,
    NumberQuestion,
    Question,
    TextQuestion,
)
from vmlab.report.model import CheckResult, Outcome, Predictions, Report

QUESTION = "question"  # CheckResult.kind of a number or choice question
QUESTION_TEXT = "question-text"  # a written answer: presence is automatic, its points are a tutor's
ANSWERS_CHECK = "answers"  # id and kind of the check on the recorded answers and their seal
PREFIX = "q:"  # a question's result id is q:<question id>

AnswerKey = dict[str, str]


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
            f"no answers handed in: 0 of {points_text(q.points)} (run with --input {ANSWERS_INPUT}=FILE; "
            f"'vmlab lab answers {lab.lab.name}' writes the template)"
        )
        return "fail", 0.0, None, expected, why
    if record.broken is not None:
        return "fail", 0.0, None, expected, f"not graded: {record.broken}"
    given = record.answers.get(q.id)
    if given is None:
        why = f"not answered: 0 of {points_text(q.points)} ([{q.id}] answer is empty)"
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
    why = f"{words} words: a tutor grades this answer (0 of {points_text(q.points)} until then)"
    return "pass", 0.0, f"{words} words", expected, why


def _expected(q: Question, key: AnswerKey) -> str:
    if isinstance(q, NumberQuestion):
        return f"your prediction within {tolerance_text(q)} of your measurement"
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
    text = (
        f"predicted {predicted:g}{unit}, measured {measured:g}{unit}: {off} (tolerance {tolerance_text(q)})"
    )
    if q.published is not None:
        ratio = f", yours is {measured / q.published:.2g}x it" if q.published else ""
        text += f"; published {q.published:g}{unit} ({q.source}){ratio}"
    return text
