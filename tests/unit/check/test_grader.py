"""Outcomes, groups, step gating, `when`, and the grade with its exit code and score."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.helpers import measured
from tests.unit.check.builders import make_lab

from vmlab.check.grader import compare, evaluate_check, grade_report, make_grade, resolve
from vmlab.errors import LabError
from vmlab.report.model import CheckResult, Experiment, Measurement, Report
from vmlab.report.stats import summarize


def stage(samples: list[float]) -> Measurement:
    return Measurement(unit="s", samples=samples, summary=summarize(samples))


def one(**kw: Any) -> Any:
    return make_lab([{"id": "c", **kw}]).checks[0]


@pytest.fixture
def report(make_report: Callable[..., Report]) -> Report:
    return make_report(
        {
            "hello": Experiment(unit="exits", counts={"IO": 2, "HLT": 1}, text="4\n", values={"ok": True}),
            "fast": measured([1.0, 2.0, 3.0]),
            "slow": measured([10.0, 20.0, 30.0]),
            "startup": {"vm": Experiment(unit="s", stages={"a": stage([1.0]), "b": stage([2.0])})},
            "jit": Experiment(
                unit="n", values={"java.lang.String::hashCode": 7}, series={"rss": [4.0, 9.0, 5.0]}
            ),
        }
    )


CASES: list[tuple[dict[str, Any], str]] = [
    (dict(kind="exact", path="hello.counts.IO", value=2), "pass"),
    (dict(kind="exact", path="hello.counts.IO", value=3), "fail"),
    (dict(kind="exact", path="hello.values.ok", value=True), "pass"),
    (dict(kind="exact", path="hello.counts.HLT", value=True), "fail"),  # 1 is not True
    (dict(kind="range", path="fast", lo=1.5, hi=2.5), "pass"),  # median of 1, 2, 3 is 2
    (dict(kind="range", path="fast", hi=1.5), "fail"),
    (dict(kind="ratio", num="slow", den="fast", lo=5), "pass"),  # 20 / 2 = 10
    (dict(kind="ratio", num="fast", den="slow", lo=5), "fail"),  # 2 / 20 = 0.1
    (dict(kind="regex", path="hello.text", pattern=r"^4$"), "pass"),
    (dict(kind="regex", path="hello.text", pattern=r"^5"), "fail"),
    (dict(kind="present", path="hello"), "pass"),
    (dict(kind="present", path="nothing"), "fail"),
    (dict(kind="order", paths=["startup.vm.stages.a", "startup.vm.stages.b"]), "pass"),
    (dict(kind="order", paths=["slow", "fast"]), "fail"),
    (dict(kind="order", paths=["fast", "fast"], strict=True), "fail"),
    (dict(kind="compare", left="slow", op=">", right="fast"), "pass"),
    (dict(kind="compare", left="fast", op="==", right="slow", rel_tol=0.5), "fail"),  # |2-20| > 0.5*20
    (dict(kind="exact", path='jit.values."java.lang.String::hashCode"', value=7), "pass"),
    (dict(kind="expr", expr="max(jit.series.rss) - min(jit.series.rss) == 5"), "pass"),  # 9 - 4
    (dict(kind="expr", expr="last(jit.series.rss) > mean(jit.series.rss)"), "fail"),  # 5 < 18/3 = 6
    (dict(kind="expr", expr="median(slow) / median(fast) >= 10 and len(slow) == 3"), "pass"),
    (dict(kind="expr", expr="`startup.vm.stages.b` / `startup.vm.stages.a` == 2"), "pass"),
    (dict(kind="expr", expr="fast / (slow - slow) > 1"), "error"),  # division by zero: the expression's fault
    (dict(kind="expr", expr="hello.text > 1"), "fail"),  # text where a number is due: the data's fault
]


@pytest.mark.parametrize(("spec", "outcome"), CASES, ids=[f"{c[0]['kind']}-{i}" for i, c in enumerate(CASES)])
def test_check_kinds(report: Report, spec: dict[str, Any], outcome: str) -> None:
    result = evaluate_check(one(**spec), report)
    assert result.outcome == outcome, result
    assert result.score == (1.0 if outcome == "pass" else 0.0)
    if outcome != "pass":
        assert result.message


def test_missing_path_fails_with_its_name(report: Report) -> None:
    result = evaluate_check(one(kind="exact", path="hello.counts.MMIO", value=0), report)
    assert result.outcome == "fail" and result.message == "hello.counts.MMIO is not in the report"


def test_ratio_over_zero_fails_not_crashes(make_report: Callable[..., Report]) -> None:
    r = make_report({"z": measured([0.0]), "x": measured([1.0])})
    assert evaluate_check(one(kind="ratio", num="x", den="z", lo=1), r).outcome == "fail"


def test_resolve_summary_median_and_envelope(report: Report) -> None:
    assert resolve(report, "slow") == 20.0
    assert resolve(report, "slow.summary.max") == 30.0
    assert resolve(report, "host.accel") == "tcg"  # conftest's host


@pytest.mark.parametrize(
    ("left", "op", "right", "rel", "expected"),
    [
        (1.0, "==", 1.04, 0.05, True),  # |0.04| <= 0.05 * 1.04
        (1.0, "==", 1.2, 0.05, False),
        (1.0, "<", 1.04, 0.05, False),  # less, but within tolerance: not less beyond it
        (1.0, "<", 1.2, 0.05, True),
        (1.04, "<=", 1.0, 0.05, True),  # greater, but close
        (1.2, "<=", 1.0, 0.05, False),
        (1.0, "!=", 1.0, 0.0, False),
        (2.0, ">", 1.0, 0.0, True),
        (1.0, ">=", 1.0, 0.0, True),
    ],
)
def test_compare_tolerance(left: float, op: str, right: float, rel: float, expected: bool) -> None:
    assert compare(left, op, right, rel_tol=rel) is expected


# ---- steps behind checks ---------------------------------------------------------------------------


def test_outcome_follows_the_step(report_with_steps: Callable[..., Report]) -> None:
    lab = make_lab(
        [
            {"id": "ran", "task": "t1", "kind": "present", "path": "a"},
            {"id": "ran-missing", "task": "t1", "kind": "present", "path": "a.counts.x"},
            {"id": "skipped", "task": "t1", "kind": "present", "path": "b"},
            {"id": "broken", "task": "t2", "kind": "present", "path": "c"},
            {"id": "by-task", "task": "t2", "kind": "present", "path": "derived-exp"},
        ]
    )
    r = report_with_steps({"a": measured([1.0])}, a="ok", b="skipped", c="error")
    results, grade = grade_report(r, lab)
    got = {x.id: (x.outcome, x.message) for x in results}
    assert got["ran"] == ("pass", "")
    assert got["ran-missing"] == ("fail", "a.counts.x is not in the report")  # the step ran: a real fail
    assert got["skipped"] == ("skipped", "step b was skipped: b said no")
    assert got["broken"] == ("error", "step c failed: c said no")
    # an experiment no step is named after: the statuses of its task's steps decide
    assert got["by-task"] == ("error", "step c failed: c said no")
    assert grade.exit_code == 1  # a required fail outweighs the ungradable ones


def test_report_without_steps_grades_missing_as_fail(make_report: Callable[..., Report]) -> None:
    lab = make_lab([{"id": "x", "task": "t1", "kind": "present", "path": "b"}])
    results, grade = grade_report(make_report({}), lab)
    assert results[0].outcome == "fail" and grade.exit_code == 1


def test_skipped_step_exits_3(report_with_steps: Callable[..., Report]) -> None:
    lab = make_lab([{"id": "x", "task": "t1", "kind": "present", "path": "a"}])
    _, grade = grade_report(report_with_steps({}, a="interrupted"), lab)
    assert (grade.exit_code, grade.passed) == (3, False)


def test_when_false_is_not_applicable(report: Report) -> None:
    lab = make_lab(
        [
            {"id": "kvm-only", "kind": "present", "path": "nothing", "when": "host.accel == 'kvm'"},
            {"id": "tcg-only", "kind": "present", "path": "hello", "when": "host.accel != 'kvm'"},
        ]
    )
    results, grade = grade_report(report, lab)
    kvm, tcg = results[0], results[1]
    assert (kvm.outcome, kvm.applicable, kvm.score) == ("skipped", False, 0.0)
    assert kvm.message == "not applicable: host.accel == 'kvm' is false (host.accel = 'tcg')"
    assert tcg.outcome == "pass"
    assert (grade.exit_code, grade.score, grade.max_score) == (0, 1.0, 1.0)  # the n/a check counts nowhere


# ---- group checks -----------------------------------------------------------------------------------


def test_each_expands_with_member_ids_and_tasks(make_report: Callable[..., Report]) -> None:
    lab = make_lab(
        [
            {
                "id": "oracle",
                "kind": "exact",
                "each": ["a", "c"],
                "path": "{member}.values.outcome",
                "value": "A=1",
                "description": "{member} matches",
            }
        ]
    )
    r = make_report(
        {
            "a": Experiment(unit="s", values={"outcome": "A=1"}),
            "c": Experiment(unit="s", values={"outcome": "A=2"}),
        }
    )
    results, _ = grade_report(r, lab)
    got = [(x.id, x.task, x.outcome, x.description) for x in results[:2]]
    # a's step is in task t1, c's in t2 (make_lab)
    assert got == [("oracle[a]", "t1", "pass", "a matches"), ("oracle[c]", "t2", "fail", "c matches")]


def test_each_over_a_report_group(make_report: Callable[..., Report]) -> None:
    lab = make_lab(
        [{"id": "io", "task": "t1", "kind": "range", "each": "a", "path": "a.{member}.counts.IO", "lo": 1}]
    )
    r = make_report(
        {"a": {"x.y": Experiment(unit="n", counts={"IO": 1}), "z": Experiment(unit="n", counts={"IO": 0})}}
    )
    results, _ = grade_report(r, lab)
    # a member with a dot needs no quoting: it is put into a segment after parsing
    assert [(x.id, x.outcome) for x in results[:2]] == [("io[x.y]", "pass"), ("io[z]", "fail")]
    missing, _ = grade_report(make_report({}), lab)
    assert (missing[0].id, missing[0].outcome) == ("io", "fail")


def test_task_filter(report: Report) -> None:
    lab = make_lab(
        [
            {"id": "one", "task": "t1", "kind": "present", "path": "hello"},
            {"id": "two", "task": "t2", "kind": "present", "path": "nothing"},
        ]
    )
    results, grade = grade_report(report, lab, tasks=["t1"])
    assert [r.id for r in results] == ["one", "integrity"] and grade.exit_code == 0
    with pytest.raises(LabError, match="no task 't9'"):
        grade_report(report, lab, tasks=["t9"])


# ---- the grade -----------------------------------------------------------------------------------------


def res(
    cid: str, outcome: str, *, required: bool = True, timing: bool = False, points: float = 1.0
) -> CheckResult:
    return CheckResult(
        id=cid,
        kind="exact",
        outcome=outcome,  # type: ignore[arg-type]
        required=required,
        timing=timing,
        points=points,
        score=points if outcome == "pass" else 0.0,
    )


@pytest.mark.parametrize(
    ("outcomes", "exit_code"),
    [
        (["pass", "pass"], 0),
        (["pass", "fail"], 1),
        (["pass", "error"], 3),
        (["skipped", "pass"], 3),
        (["fail", "error"], 1),
    ],
)
def test_exit_codes(outcomes: list[str], exit_code: int) -> None:
    grade = make_grade([res(f"c{i}", o) for i, o in enumerate(outcomes)])
    assert grade.exit_code == exit_code and grade.passed is (exit_code == 0)


def test_score_counts_points_of_graded_checks() -> None:
    results = [
        res("a", "pass", points=2),
        res("b", "fail", points=3),
        res("c", "error", points=5),  # could not be graded: 0 of its 5 points (fail closed)
        res("d", "pass", required=False, points=1),
        res("e", "fail", required=False),
    ]
    grade = make_grade(results)
    # score 2 + 1; max 2 + 3 + 5 + 1 + 1 (a to e: every check the lab declares counts)
    assert (grade.score, grade.max_score, grade.exit_code) == (3.0, 12.0, 1)
    assert grade.counts["required"] == 3 and grade.counts["required_passed"] == 1
    assert grade.counts["optional"] == 2 and grade.counts["optional_passed"] == 1


def test_optional_failure_does_not_fail_the_lab() -> None:
    assert make_grade([res("a", "pass"), res("b", "fail", required=False)]).exit_code == 0


def test_timing_advisory_keeps_timing_out_of_verdict_and_score() -> None:
    results = [res("count", "pass"), res("speed", "fail", timing=True)]
    graded = make_grade(results, "graded")
    advisory = make_grade(results, "advisory")
    assert (graded.exit_code, graded.score, graded.max_score) == (1, 1.0, 2.0)
    assert (advisory.exit_code, advisory.score, advisory.max_score) == (0, 1.0, 1.0)
    assert advisory.counts["advisory"] == 1 and advisory.timing == "advisory"


def test_failed_integrity_scores_zero() -> None:
    grade = make_grade([res("a", "pass", points=4), res("integrity", "fail", points=0)])
    assert (grade.score, grade.exit_code) == (0.0, 1)
