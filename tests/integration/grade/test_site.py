"""The class site in real headless Chromium (Debian's `chromium` driven by Playwright): what a tutor sees.

A screenshot of each page is kept under tests' tmp folder and attached as a test artifact path.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import unavailable
from tests.integration.grade.conftest import copy_hand_in

pytestmark = [pytest.mark.kvm, pytest.mark.chromium]  # kvm: the kvm-api hand-ins it grades (kvm_runs)

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Any:
    if shutil.which("chromium") is None:
        unavailable("chromium", "Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright", "the Python package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def test_class_site_shows_heatmap_flags_and_student_pages(
    browser: Any, kvm_runs: list[Path], warmup_run: Path, tmp_path: Path, cli: Any, record_property: Any
) -> None:
    hand = tmp_path / "hand-ins"
    for i in (0, 1, 2):
        copy_hand_in(kvm_runs[i], hand / f"s{i + 1:02d}")
    shutil.copytree(hand / "s01", hand / "copy")  # same run under a second folder: flagged
    decisions = tmp_path / "decisions.toml"
    decisions.write_text('[copy]\naction = "zero"\nreason = "a copy of s01, admitted"\n')
    res = cli(
        "grade", hand, "-o", tmp_path / "out", "--lab", "kvm-api", "--task", "own", "--decisions", decisions
    )
    assert res.exit_code == 0, res.output
    res = cli("report", "html", tmp_path / "out", "-o", tmp_path / "site")
    assert res.exit_code == 0, res.output

    page = browser.new_page()
    page.goto((tmp_path / "site" / "index.html").as_uri())
    assert "4 hand-ins" in page.inner_text("#summary")
    heat = page.locator("#heatmap tr[data-check]")
    rates = {
        heat.nth(i).locator("td").nth(0).inner_text(): heat.nth(i).locator("td").nth(1).inner_text()
        for i in range(heat.count())
    }
    assert rates["own-output"] == "100%" and rates["own-exits"] == "100%"
    flagged = page.inner_text("#flagged")
    assert "duplicate-run-id" in flagged and "same-samples" in flagged
    # the evidence beside the tutor's decision; s01 (the original) is held until decided
    copy_row = page.locator('#flagged tr[data-handin="copy"]').inner_text()
    assert "decided" in copy_row and "zero: a copy of s01, admitted" in copy_row
    s01_row = page.locator('#flagged tr[data-handin="s01"]').inner_text()
    assert "review" in s01_row and "add [s01] to decisions.toml" in s01_row
    students = page.locator('#students tr[data-handin="s01"]').inner_text()
    assert "held (4/4)" in students
    assert page.locator("figure.distribution svg").count() >= 1
    shot = tmp_path / "class.png"
    page.screenshot(path=str(shot), full_page=True)
    record_property("screenshot", str(shot))

    page.click("text=s02")
    assert "graded" in page.inner_text("#verdict")
    checks = page.inner_text("#checks")
    assert "own-output" in checks and "pass" in checks
    figure = page.locator("figure.plot").first
    assert "own-program" in figure.inner_text() and "line" in figure.inner_text()  # the concept is shown
    page.screenshot(path=str(tmp_path / "student.png"), full_page=True)
    page.close()
