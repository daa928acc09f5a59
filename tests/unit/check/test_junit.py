"""JUnit: error → <error>, skipped → <skipped>, required fail → <failure>, optional fail → a note."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from vmlab.check.grader import make_grade
from vmlab.check.junit import junit_tree
from vmlab.report.model import CheckResult


def res(cid: str, outcome: str, **kw: object) -> CheckResult:
    return CheckResult(id=cid, kind="exact", outcome=outcome, message=f"{cid} says", measured=1, **kw)  # type: ignore[arg-type]


def test_outcomes_map_to_junit_elements() -> None:
    results = [
        res("p", "pass"),
        res("f", "fail"),
        res("o", "fail", required=False),
        res("e", "error"),
        res("s", "skipped"),
        res("t", "fail", timing=True),
    ]
    root = junit_tree(results, "lab", make_grade(results, "advisory")).getroot()
    assert root is not None
    suite = root[0]
    cases = {c.get("name"): [child.tag for child in c] for c in suite}
    assert cases == {
        "p": ["system-out"],  # a passing check keeps its note (integrity: artifacts not verified)
        "f": ["failure"],
        "o": ["system-out"],
        "e": ["error"],
        "s": ["skipped"],
        "t": ["system-out"],  # timing, advisory: does not decide the verdict
    }
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "6",
        "1",
        "1",
        "1",
    )
    note = suite.find("testcase[@name='o']/system-out")
    assert note is not None and note.text == "optional check failed: measured 1, expected . o says"
    assert ET.tostring(suite)  # serialisable
