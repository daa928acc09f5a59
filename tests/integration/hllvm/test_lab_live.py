"""The whole HLL-VM lab on the real JDK, runner by runner, graded against its own lab.toml.

Timing checks are computed but their verdicts not asserted (tests.helpers.failed_verdicts' rule);
counts and verdicts are.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.java, pytest.mark.slow]


def _need(*tools: str) -> None:
    for t in tools:
        if shutil.which(t) is None:
            if os.environ.get("CI") == "true":
                pytest.fail(f"{t} is not installed, and CI must install it")
            pytest.skip(f"{t} is not installed")


@pytest.fixture(scope="module")
def experiments(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The whole lab through the run pipeline, as `vmlab lab run hll-vm` does it."""
    from vmlab.labs.pipeline import RunRequest, run_lab

    _need("java", "javac", "javap", "jasmin")
    tmp = tmp_path_factory.mktemp("hllvm")
    mp = pytest.MonkeyPatch()
    mp.setenv("VMLAB_HOME", str(tmp / "home"))
    try:
        # the tutors' model solution stands for a student's finished task (the default is the template,
        # which fails the task on purpose; the examples in jasmin/ count for nothing when handed in)
        jasmin = Path(__file__).resolve().parents[3] / "labs" / "hll-vm" / "solution" / "jasmin"
        result = run_lab(RunRequest(lab="hll-vm", output=tmp / "report.json", inputs={"jasmin": jasmin}))
    finally:
        mp.undo()
    assert all(s.status == "ok" for s in result.report.steps.values()), result.report.steps
    out = result.report.model_dump(mode="json")["experiments"]
    return out, tmp


def test_every_check_of_lab_toml(experiments: tuple[dict[str, Any], Path]) -> None:
    from tests.helpers import failed_verdicts

    from vmlab.check.grader import grade_report
    from vmlab.labs.catalog import load_lab
    from vmlab.report.io import load_report

    _, tmp = experiments
    results, grade = grade_report(load_report(tmp / "report.json"), load_lab("hll-vm"), report_dir=tmp)
    assert failed_verdicts([r.model_dump(mode="json") for r in results]) == []
    assert grade.exit_code in (0, 1)  # 1 only through a timing check on a busy machine


def test_artifacts_kept(experiments: tuple[dict[str, Any], Path]) -> None:
    _, tmp = experiments
    arts = tmp / "artifacts"
    assert (arts / "jit-events" / "printcompilation.txt").stat().st_size > 0
    assert (arts / "verifier" / "BadAddType.class").read_bytes()[:4] == b"\xca\xfe\xba\xbe"
    assert (arts / "jasmin" / "Mine.class").is_file()
    assert (arts / "gc" / "gc-g1.txt").read_text().count(" Pause ") >= 1


def test_warmup_series_and_workload_cache(experiments: tuple[dict[str, Any], Path]) -> None:
    exps, tmp = experiments
    for mode, e in exps["jit-modes"].items():
        assert len(e["series"]["ns_per_iter"]) == 12, mode
        assert e["summary"]["n"] == 12 - 4
    cache = list((tmp / "home" / "hllvm" / "classes").glob("*/.complete"))
    assert len(cache) == 1  # compiled once, reused by every later step
    assert {p.name for p in cache[0].parent.glob("*.class")} >= {
        "HotLoop.class",
        "CallSite.class",
        "Alloc.class",
    }
