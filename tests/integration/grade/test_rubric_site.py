"""Written answers graded on the class site, in real headless Chromium: a tutor opens the question page
(every student's answer side by side), enters points and comments, downloads rubric.csv, grades the
class again with it and finds the points in class.csv and Gradescope's results.json.

Real warmup runs (task t2-interpreter, which asks the text question `interpreter-start-up`: 2 points,
at least 30 words) with each student's own answers file.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from tests.integration.grade.conftest import copy_hand_in, run
from tests.integration.grade.test_site import browser  # noqa: F401  (the module's Chromium fixture)

pytestmark = [pytest.mark.chromium]  # warmup runs only: no /dev/kvm

QID = "interpreter-start-up"
WORDS = (
    "CPython initialises its runtime, reads the site module and imports the encodings and the standard "
    "library modules it needs, then compiles and runs the empty program; the imports cost most, and "
    "python -X importtime shows each one."
)  # 37 words
ANSWERS = {
    "s01": WORDS,
    "s02": "<script>window.injected = 1</script> & <b>bold</b> " + WORDS,  # markup must show as text
    "s03": "it imports things, I think the imports cost most",  # 9 words: too short
}


def _csv(out: Path) -> dict[str, dict[str, str]]:
    return {r["handin"]: r for r in csv.DictReader((out / "class.csv").open())}


def test_tutor_grades_written_answers_on_the_site_and_the_points_reach_every_output(
    browser: Any,  # noqa: F811
    session_home: Path,
    tmp_path: Path,
    cli: Any,
    record_property: Any,
) -> None:
    hand = tmp_path / "hand-ins"
    for student, text in ANSWERS.items():
        answers = tmp_path / "answers" / f"{student}.toml"
        answers.parent.mkdir(exist_ok=True)
        answers.write_text(f"[{QID}]\nanswer = {json.dumps(text)}\n")
        report = run(
            "warmup",
            tmp_path / "runs" / student,
            student,
            tasks=["t2-interpreter"],
            inputs={"answers": answers},
        )
        copy_hand_in(report, hand / student)
    grade = ("grade", hand, "--lab", "warmup", "--task", "t2-interpreter", "--on-flag", "keep")
    res = cli(*grade, "-o", tmp_path / "out", "--json")
    assert res.exit_code == 0, res.output
    before = _csv(tmp_path / "out")
    # s01 and s02 answered at length: both wait for the tutor; s03's answer is too short (failed)
    assert [before[k]["rubric_pending"] for k in ("s01", "s02", "s03")] == ["1", "1", "0"]
    assert json.loads(res.stdout)["rubric_pending"] == 2
    res = cli("report", "html", tmp_path / "out", "-o", tmp_path / "site")
    assert res.exit_code == 0, res.output

    page = browser.new_page()
    dialogs: list[str] = []

    def dialog(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    page.goto((tmp_path / "site" / "index.html").as_uri())
    page.click(f'#questions tr[data-question="{QID}"] a')
    assert page.locator("#answers tr[data-handin]").count() == 3
    s02 = page.locator('#answers tr[data-handin="s02"] pre.answer').inner_text()
    assert s02.startswith("<script>window.injected = 1</script> & <b>bold</b> CPython")
    assert page.evaluate("window.injected === undefined") and not dialogs

    def enter(handin: str, points: str, comment: str = "") -> None:
        row = page.locator(f'#answers tr[data-handin="{handin}"]')
        row.locator("input[name=points]").fill(points)
        row.locator("textarea[name=comment]").fill(comment)

    enter("s01", "3")  # more than the question's 2 points: refused in the page
    page.click("#download")
    assert "between 0 and 2" in page.inner_text("#rubric-status")
    enter("s01", "1.5", 'names the imports; "how to check" is thin, see -X importtime')
    enter("s02", "2")
    enter("s03", "1")  # a too-short answer, override not ticked: grading does not apply it
    page.reload()  # the entries are kept in the browser's local storage (another question page's too)
    assert page.locator('#answers tr[data-handin="s02"] input[name=points]').input_value() == "2"
    with page.expect_download() as dl:
        page.click("#download")
    rubric = tmp_path / "rubric.csv"
    dl.value.save_as(rubric)
    shot = tmp_path / "question.png"
    page.screenshot(path=str(shot), full_page=True)
    record_property("screenshot", str(shot))
    page.close()
    assert list(csv.DictReader(rubric.open())) == [
        {
            "handin": "s01",
            "question": QID,
            "points": "1.5",
            "comment": 'names the imports; "how to check" is thin, see -X importtime',
            "override": "",
        },
        {"handin": "s02", "question": QID, "points": "2", "comment": "", "override": ""},
        {"handin": "s03", "question": QID, "points": "1", "comment": "", "override": ""},
    ]

    res = cli(*grade, "-o", tmp_path / "out2", "--rubric", rubric, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["rubric_pending"] == 0
    assert len(summary["unused_rubric"]) == 1 and summary["unused_rubric"][0].startswith("s03 " + QID)
    after = _csv(tmp_path / "out2")
    # what the checks gave before, plus the points the tutor entered (s03's were not applied)
    for handin, points in (("s01", 1.5), ("s02", 2.0), ("s03", 0.0)):
        assert float(after[handin]["score"]) == float(before[handin]["score"]) + points
        assert float(after[handin]["rubric_points"]) == points
        assert after[handin]["max_score"] == before[handin]["max_score"]
    gs = json.loads((tmp_path / "out2" / "gradescope" / "s01" / "results.json").read_text())
    test = next(t for t in gs["tests"] if t["name"] == f"q:{QID}")
    assert test == {
        "name": f"q:{QID}",
        "score": 1.5,
        "max_score": 2.0,
        "output": 'names the imports; "how to check" is thin, see -X importtime',
        "visibility": "after_published",
    }
    assert gs["score"] == float(after["s01"]["score"])

    # the site built from the graded class is pre-filled with the rubric (a fresh browser context:
    # nothing comes from the first page's local storage)
    res = cli("report", "html", tmp_path / "out2", "-o", tmp_path / "site2")
    assert res.exit_code == 0, res.output
    page = browser.new_page()
    page.goto((tmp_path / "site2" / "questions" / f"{QID}.html").as_uri())
    row = page.locator('#answers tr[data-handin="s01"]')
    assert row.locator("input[name=points]").input_value() == "1.5"
    assert row.locator("textarea[name=comment]").input_value().startswith("names the imports")
    assert page.locator('#answers tr[data-handin="s03"] input[name=points]').input_value() == ""
    page.close()
