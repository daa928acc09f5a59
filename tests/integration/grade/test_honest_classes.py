"""An honest class of every shipped lab grades 100 % unflagged, with fail-closed scoring, identity from
the hand-in and near-copy detection all on.

Two students per lab run it for real on this machine, each with the reference solution where the lab
takes a student input (their own copy: a comment with their name), and hand in report.json with its
artifacts/. The tutor grades the tasks the recipe assigns, with timing checks advisory (wall-clock
verdicts are noisy here; counts are not). Every hand-in must come out `graded`, unflagged, with every
check's points; the questions, left unanswered here, score 0 of theirs without a flag (they are
graded in tests/unit/labs/test_questions.py). Two honest runs on one machine are the closest honest
hand-ins can come, so this is also the false-positive test of the sample near-copy threshold. Where
both students hand in one large reference solution (the observer, the Jasmin examples, an engine),
their code is one code by construction: those recipes compare samples only.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.integration.grade.conftest import DATA, copy_hand_in, run

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Recipe:
    tasks: list[str] = field(default_factory=list)  # empty: every task of the lab
    steps: list[str] | None = None
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)  # input -> reference solution text
    folders: dict[str, Path] = field(default_factory=dict)  # input -> a reference solution folder
    near_copies: str = "all"
    marks: list[Any] = field(default_factory=list)


def _isa_t1() -> str:
    from tests.integration.isa.students import solution

    return solution("t1")


RECIPES = {
    "warmup": Recipe(),
    "kvm-api": Recipe(
        inputs={"program": (DATA / "kvm-api" / "line_hypercall.asm").read_text()},
        marks=[pytest.mark.kvm],
    ),
    "isa-emulation": Recipe(
        tasks=["t1-interpret"],
        steps=["oracle", "t1"],
        sets={"oracle": {"scenarios": [1, 2, 3], "repeats": 1}, "t1": {"scenarios": [1, 2, 3, 4]}},
        inputs={"t1": "__isa_t1__"},
        near_copies="samples",
    ),
    "hll-vm": Recipe(
        folders={"jasmin": REPO / "labs" / "hll-vm" / "solution" / "jasmin"},
        near_copies="samples",
        marks=[pytest.mark.java],
    ),
    "process-vm": Recipe(
        folders={"tool": REPO / "labs" / "process-vm" / "solution" / "observer"},
        near_copies="samples",
        marks=[pytest.mark.slow],
    ),
    # every task but the memory and density ones (t7-t9: KSM, balloon, density), whose own tests
    # (tests/integration/systemvm/test_memory_tasks.py) grade them on real guests
    "system-vm": Recipe(
        tasks=["t1-startup", "t2-memory", "t3-traps", "t4-syscall-path", "t5-device-traps", "t6-vcpus"],
        sets={
            "compare": {"runs": 2},
            "devices": {"idle_s": 1.0, "io_blocks": 2},
            "vcpus": {"iterations": 30000, "repeats": 1},
        },
        marks=[pytest.mark.libvirt, pytest.mark.slow],
    ),
    "os-virt": Recipe(  # the tasks on the student's box (t8 only times runtimes against each other)
        tasks=["t1-pid-uts", "t2-mount", "t3-user", "t4-net", "t5-cgroups", "t6-seccomp", "t7-caps"],
        inputs={"box": (REPO / "labs" / "os-virt" / "solution" / "box.py").read_text()},
        near_copies="samples",
        marks=[pytest.mark.slow],
    ),
}


def _inputs(recipe: Recipe, student: str, where: Path) -> dict[str, Path]:
    out = {}
    for name, text in recipe.inputs.items():
        text = _isa_t1() if text == "__isa_t1__" else text
        comment = "#" if name.startswith("t") or name == "box" else ";"
        suffix = ".py" if name.startswith("t") or name == "box" else ".asm"
        path = where / student / f"{name}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{text}\n{comment} written by {student}\n")
        out[name] = path
    for name, folder in recipe.folders.items():
        out[name] = where / student / name
        shutil.copytree(folder, out[name])
        (out[name] / "AUTHOR").write_text(f"{student}\n")  # their own copy, not byte for byte the other's
    return out


def test_every_shipped_lab_has_a_recipe() -> None:
    from vmlab.labs.catalog import lab_names

    assert set(lab_names()) <= set(RECIPES)


@pytest.mark.parametrize("lab", [pytest.param(k, marks=r.marks) for k, r in RECIPES.items()])
def test_an_honest_class_grades_full_marks_unflagged(
    lab: str, tmp_path: Path, session_home: Path, cli: Any, request: pytest.FixtureRequest
) -> None:
    if lab == "kvm-api":
        request.getfixturevalue("kvm_ok")
    home = None
    if lab in ("system-vm", "os-virt"):  # the tiny image (a guest; the box's root file system)
        request.getfixturevalue("tiny_image")
        home = request.getfixturevalue("test_home")
    recipe = RECIPES[lab]
    hand = tmp_path / "hand-ins"
    for student in ("ana", "ben"):
        report = run(
            lab,
            tmp_path / "runs" / student,
            student,
            home=home,
            tasks=recipe.tasks or None,
            steps=recipe.steps,
            sets=recipe.sets,
            inputs=_inputs(recipe, student, tmp_path / "src"),
        )
        copy_hand_in(report, hand / student)
    args = [a for t in recipe.tasks for a in ("--task", t)]
    args += ["--near-copies", recipe.near_copies]
    res = cli("grade", hand, "-o", tmp_path / "out", "--lab", lab, "--timing", "advisory", "--json", *args)
    assert res.exit_code == 0, res.output
    students = json.loads((tmp_path / "out" / "class.json").read_text())["students"]
    for s in students:
        # timing checks do not count under --timing advisory (they may fail on a busy host)
        checks = [c for c in s["checks"] if not c["kind"].startswith("question")]
        failed = [(c["id"], c["message"]) for c in checks if c["outcome"] != "pass" and not c["timing"]]
        assert (s["handin"], s["flags"], failed) == (s["student"], [], [])
        assert s["status"] == "graded"
        unanswered = sum(c["points"] for c in s["checks"] if c["kind"].startswith("question"))
        assert s["score"] == s["max_score"] - unanswered > 0
