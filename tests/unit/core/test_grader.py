from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.helpers import measured

from vmlab.check.grader import all_required_pass, evaluate, resolve
from vmlab.labs.model import Lab
from vmlab.report.model import Experiment, Measurement, Report
from vmlab.report.stats import summarize


def stage(samples: list[float]) -> Measurement:
    return Measurement(unit="s", samples=samples, summary=summarize(samples))


def check(**kw: Any) -> Any:
    lab = Lab.model_validate({"lab": {"name": "t", "title": "t"}, "checks": [{"id": "c", **kw}]})
    return lab.checks[0]


@pytest.fixture
def report(make_report: Callable[..., Report]) -> Report:
    return make_report(
        {
            "hello": Experiment(unit="exits", counts={"IO": 2, "HLT": 1}, text="4\n", values={"ok": True}),
            "fast": measured([1.0, 2.0, 3.0]),
            "slow": measured([10.0, 20.0, 30.0]),
            "startup": {"vm": Experiment(unit="s", stages={"a": stage([1.0]), "b": stage([2.0])})},
        }
    )


CASES = [
    (dict(kind="exact", path="hello.counts.IO", value=2), True),
    (dict(kind="exact", path="hello.counts.IO", value=3), False),
    (dict(kind="exact", path="hello.values.ok", value=True), True),
    (dict(kind="exact", path="hello.counts.HLT", value=True), False),  # 1 is not True
    (dict(kind="range", path="fast", lo=1.5, hi=2.5), True),
    (dict(kind="range", path="fast", hi=1.5), False),
    (dict(kind="ratio", num="slow", den="fast", lo=5), True),
    (dict(kind="ratio", num="fast", den="slow", lo=5), False),
    (dict(kind="regex", path="hello.text", pattern=r"^4$"), True),
    (dict(kind="regex", path="hello.text", pattern=r"^5"), False),
    (dict(kind="present", path="hello"), True),
    (dict(kind="present", path="nothing"), False),
    (dict(kind="order", paths=["startup.vm.stages.a", "startup.vm.stages.b"]), True),
    (dict(kind="order", paths=["slow", "fast"]), False),
    (dict(kind="order", paths=["fast", "fast"], strict=True), False),
]


@pytest.mark.parametrize(
    ("spec", "passes"), CASES, ids=[f"{c[0]['kind']}-{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_check_kinds(report: Report, spec: dict[str, Any], passes: bool) -> None:
    result = evaluate(check(**spec), report)
    assert result.passed is passes
    if not passes:
        assert result.message


def test_missing_path_fails_with_its_name(report: Report) -> None:
    result = evaluate(check(kind="exact", path="hello.counts.MMIO", value=0), report)
    assert not result.passed
    assert result.message == "hello.counts.MMIO is not in the report"


def test_ratio_over_zero_fails_not_crashes(report: Report, make_report: Callable[..., Report]) -> None:
    r = make_report({"z": measured([0.0]), "x": measured([1.0])})
    assert not evaluate(check(kind="ratio", num="x", den="z", lo=1), r).passed


def test_resolve_summary_median(report: Report) -> None:
    assert resolve(report, "slow") == 20.0
    assert resolve(report, "slow.summary.max") == 30.0


def test_optional_failure_does_not_fail_the_lab(report: Report) -> None:
    results = [evaluate(check(kind="exact", path="hello.counts.IO", value=9, required=False), report)]
    assert not results[0].passed and all_required_pass(results)
