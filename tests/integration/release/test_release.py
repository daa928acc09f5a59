"""`vmlab release`: the student kit of every lab, then grepped and run.

Expected values come from outside vmlab.release: the lists written down here (what the kit holds, what
the labs declare as solutions and which of those the shipped code imports), tomllib on the tutors'
lab.toml files, and greps of the kit for the solutions' own symbols. The kit is run as a student runs
it, without installing it: PYTHONPATH at its src/, VMLAB_LABS at its labs/.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vmlab.cli.main import app

ROOT = Path(__file__).resolve().parents[3]
LABS = sorted(p.parent.name for p in (ROOT / "labs").glob("*/lab.toml"))
runner = CliRunner()

# written down from labs/*/lab.toml `[rerun]` and a grep of src/vmlab for their importers
DECLARED_SOLUTIONS = {"vmlab.isa.engines", "vmlab.isa.registry", "vmlab.isa.reference"}
RERUN_HOOKS = {
    "vmlab.isa.rerun",
    "vmlab.kvmapi.rerun",
    "vmlab.warmup.rerun",  # re-measured on the runner
    "vmlab.systemvm.rerun",  # re-measured on the runner
    "vmlab.hllvm.rerun",
    "vmlab.procvm.rerun",
    "vmlab.osvirt.rerun",  # the hidden probes of os-virt (a package)
}
# needed by the shipped steps: vmlab.isa.lab and the worker that runs a student's engine import the
# registry (load_engine_file, bind_params, as_result) and the worker the reference interpreter (the
# oracle of a program file and --diagnose's bisection), as the generator does for a student's own
# program SV (its oracle)
KEPT = {
    "vmlab.isa.registry": {"vmlab.isa.lab", "vmlab.isa.worker", "vmlab.isa.bench", "vmlab.isa.cli"},
    "vmlab.isa.reference": {"vmlab.isa.worker", "vmlab.isa.cli", "vmlab.isa.gen"},
}
LEFT_OUT_MODULES = {
    "src/vmlab/isa/engines/": "vmlab.isa.engines",
    "src/vmlab/isa/rerun.py": "vmlab.isa.rerun",
    "src/vmlab/kvmapi/rerun.py": "vmlab.kvmapi.rerun",
    "src/vmlab/osvirt/rerun/": "vmlab.osvirt.rerun",
}
KIT_HAS = [
    "pyproject.toml",
    "README.md",
    "Makefile",
    "Vagrantfile",
    "scripts/setup-host.sh",
    "vm-images/README.md",
    "schemas/report.schema.json",
    "docs/lab-contract.md",
    "docs/vagrant.md",
    "src/vmlab/__init__.py",
    "src/vmlab/py.typed",
    "src/vmlab/isa/registry.py",
    "src/vmlab/isa/reference.py",
    "src/vmlab/isa/worker.py",
    "labs/process-vm/skeleton/observer/ob_main.c",
    "labs/process-vm/skeleton/observer/Makefile.am",
    "labs/process-vm/skeleton/observer/tests/Makefile.am",
    "labs/isa-emulation/skeleton/t1_interpret.py",
    "labs/kvm-api/skeleton/line.asm",
    "labs/hll-vm/skeleton/jasmin/Mine.j",
    *[f"labs/{lab}/{name}" for lab in LABS for name in ("lab.toml", "README.md")],
]
KIT_HAS_NOT = [
    "tests",
    "ci",
    ".ci",
    ".git",
    ".venv",
    "docs/grading.md",
    "docs/runner.md",
    "docs/labs",
    "docs/_draft_release.md",
    "labs/process-vm/solution",
    "labs/process-vm/observer",
    "src/vmlab/isa/engines",
    "src/vmlab/isa/rerun.py",
    "src/vmlab/kvmapi/rerun.py",
    "src/vmlab/osvirt/rerun",
]
# symbols only the solutions hold: the model observer's helper call, the reference engines' translator,
# the model isa engines' pair filter (t3) and patched exit slot (t5), the model kvm-api guest's request
SOLUTION_SYMBOLS = [
    "addStmtToIRSB(sbOut, IRStmt_Dirty(di));",
    "class ChainingTranslator",
    "def translate_unchained",
    "st->tag == Ist_IMark",
    "p[0] not in (0, 5)",
    "slots[name] = fn",
    "mov word [0x7ffe], 1",
    ".class public StackTooDeep",  # hll-vm's model Jasmin classes
]


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("release") / "kit"
    result = runner.invoke(app, ["release", *LABS, "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def _files(top: Path) -> list[str]:
    return sorted(p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file())


def test_every_lab_is_released(kit: tuple[Path, dict[str, Any]]) -> None:
    out, data = kit
    assert set(LABS) == {"warmup", "system-vm", "kvm-api", "isa-emulation", "process-vm", "hll-vm", "os-virt"}
    assert data["labs"] == LABS
    assert sorted(p.name for p in (out / "labs").iterdir()) == LABS


def test_the_kit_holds_what_a_student_needs_and_nothing_of_the_tutors(
    kit: tuple[Path, dict[str, Any]],
) -> None:
    out, data = kit
    for rel in KIT_HAS:
        assert (out / rel).is_file(), rel
    for rel in KIT_HAS_NOT:
        assert not (out / rel).exists(), rel
    assert data["written"] == _files(out)  # --json lists exactly what is there
    assert not [f for f in _files(out) if "__pycache__" in f or f.endswith(".pyc")]


def test_no_solution_file_nor_symbol_in_the_kit(kit: tuple[Path, dict[str, Any]]) -> None:
    out, _ = kit
    files = _files(out)
    assert not [f for f in files if "solution" in Path(f).parts]
    assert [f for f in files if f.endswith("ob_main.c")] == ["labs/process-vm/skeleton/observer/ob_main.c"]
    for f in files:
        text = (out / f).read_text(errors="replace")
        for symbol in SOLUTION_SYMBOLS:
            assert symbol not in text, (f, symbol)
    # the tutors' copy does hold them: the grep above is not vacuous
    assert SOLUTION_SYMBOLS[0] in (ROOT / "labs/process-vm/solution/observer/ob_main.c").read_text()
    assert SOLUTION_SYMBOLS[1] in (ROOT / "src/vmlab/isa/engines/translate.py").read_text()
    assert SOLUTION_SYMBOLS[4] in (ROOT / "labs/isa-emulation/solution/t3_super.py").read_text()
    assert SOLUTION_SYMBOLS[5] in (ROOT / "labs/isa-emulation/solution/t5_chain.py").read_text()
    assert SOLUTION_SYMBOLS[6] in (ROOT / "labs/kvm-api/solution/line.asm").read_text()


def test_declared_solutions_are_left_out_except_those_the_steps_import(
    kit: tuple[Path, dict[str, Any]],
) -> None:
    out, data = kit
    declared: set[str] = set()
    hooks: set[str] = set()
    for lab in LABS:
        rerun = tomllib.loads((ROOT / "labs" / lab / "lab.toml").read_text()).get("rerun", {})
        declared |= set(rerun.get("solutions", []))
        if "hook" in rerun:
            hooks.add(rerun["hook"].partition(":")[0])
    assert declared == DECLARED_SOLUTIONS and hooks == RERUN_HOOKS
    kept = {k["module"]: set(k["imported_by"]) for k in data["kept_solutions"]}
    assert kept == KEPT
    left = {x["path"]: x["why"] for x in data["left_out"]}
    for path, module in LEFT_OUT_MODULES.items():
        assert module in left[path], left
        assert not (out / path).exists()
    for module in KEPT:
        assert (out / "src" / (module.replace(".", "/") + ".py")).is_file()
    # the importers as grep sees them in the kit
    assert "from vmlab.isa.registry import" in (out / "src/vmlab/isa/lab.py").read_text()
    worker = (out / "src/vmlab/isa/worker.py").read_text()
    assert "from vmlab.isa.reference import run_reference" in worker
    assert "from vmlab.isa.registry import" in worker
    # nothing shipped imports what was left out
    for f in _files(out / "src"):
        text = (out / "src" / f).read_text()
        for module in LEFT_OUT_MODULES.values():
            assert not re.search(rf"^\s*(from|import) {re.escape(module)}\b", text, re.M), (f, module)


def test_released_lab_tomls_have_no_tutors_tables_and_still_parse(kit: tuple[Path, dict[str, Any]]) -> None:
    from vmlab.release import strip_tutor_tables
    from vmlab.spec.lab import parse_lab

    out, data = kit
    assert data["removed_tables"] == {
        "labs/isa-emulation/lab.toml": ["rerun", "bounds"],
        "labs/kvm-api/lab.toml": ["rerun", "bounds"],
        "labs/hll-vm/lab.toml": ["rerun"],
        "labs/process-vm/lab.toml": ["rerun"],
        "labs/system-vm/lab.toml": ["rerun"],
        "labs/warmup/lab.toml": ["rerun"],
        "labs/os-virt/lab.toml": ["rerun"],
    }
    for lab in LABS:
        released = out / "labs" / lab / "lab.toml"
        text = released.read_text()
        assert not re.search(r"^\s*\[\[?\s*(rerun|bounds)\b", text, re.M), lab
        original = tomllib.loads((ROOT / "labs" / lab / "lab.toml").read_text())
        assert tomllib.loads(text) == {k: v for k, v in original.items() if k not in ("rerun", "bounds")}
        parsed = parse_lab(released)
        assert parsed.rerun is None and parsed.bounds == []
        for name, decl in parsed.inputs.items():
            assert decl.default is None or (released.parent / decl.default).exists(), (lab, name)
        assert strip_tutor_tables(text) == (text, [])  # idempotent: the student view hashes the same
    assert "physical bounds" not in (out / "labs/isa-emulation/lab.toml").read_text()  # their comment went


def test_a_folder_that_is_not_empty_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("mine\n")
    result = runner.invoke(app, ["release", "warmup", "-o", str(tmp_path)])
    assert result.exit_code == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "is not empty" in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_an_unknown_lab_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["release", "no-such-lab", "-o", str(tmp_path / "kit")])
    assert result.exit_code == 2
    assert not (tmp_path / "kit").exists()


# ---- the kit runs ---------------------------------------------------------------------------------

VMLAB = "import sys; from vmlab.cli.main import main; sys.argv[0] = 'vmlab'; main()"


def _kit_env(out: Path, home: Path | None) -> dict[str, str]:
    """The kit's vmlab and labs; VMLAB_HOME private, or None: the test session's (its build caches)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VMLAB_LABS", "PYTHONPATH")}
    env.update(PYTHONPATH=str(out / "src"), VMLAB_LABS=str(out / "labs"))
    if home is not None:
        env["VMLAB_HOME"] = str(home)
    return env


def _vmlab(
    out: Path, tmp_path: Path, *args: str, timeout: float = 300, shared_home: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", VMLAB, *args],
        cwd=tmp_path,
        env=_kit_env(out, None if shared_home else tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_kit_is_the_vmlab_that_runs(kit: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, _ = kit
    probe = (
        "import importlib.util, vmlab; print(vmlab.__file__); "
        "print(importlib.util.find_spec('vmlab.isa.engines'))"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=_kit_env(out, tmp_path / "home"),
        capture_output=True,
        text=True,
        check=True,
    )
    where, engines = r.stdout.splitlines()
    assert Path(where) == out / "src" / "vmlab" / "__init__.py"
    assert engines == "None"


def test_the_reference_engines_are_not_in_the_kit_nor_needed(
    kit: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """No lab step names one (they are the tasks' answers); the tutors' bench of them says so in a kit."""
    out, _ = kit
    steps = tomllib.loads((out / "labs/isa-emulation/lab.toml").read_text())["experiments"]
    runners = {s["runner"] for s in steps.values()}
    assert runners == {"vmlab.isa.lab:task", "vmlab.isa.lab:candidate"}  # the student's files, the oracle
    r = _vmlab(out, tmp_path, "isa", "bench", "--scenarios", "1")
    assert r.returncode == 3
    assert r.stderr.strip() == (
        "error: engine 'switch' is not installed (fix: the reference engines (vmlab.isa.engines) are a "
        "tutors' part; install the full vmlab)"
    )


@pytest.mark.parametrize("lab", LABS)
def test_lab_show_from_the_kit(kit: tuple[Path, dict[str, Any]], tmp_path: Path, lab: str) -> None:
    out, _ = kit
    r = _vmlab(out, tmp_path, "lab", "show", lab, "--json")
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["lab"]["name"] == lab and shown["rerun"] is None and shown["bounds"] == []


# ---- each lab from the kit: untouched, it fails exactly the tasks that need the student's work ----
# The tasks written down here come from each lab's task sheet (labs/<lab>/README.md, "What you hand in"):
# the tasks whose checks grade a file of the student's. Every lab also asks questions (q:<id>), which
# an untouched kit leaves unanswered: they fail, and nothing else does.
KIT_STUDENT = "kit-student"  # who runs the kit's labs: their variant, and the hand-in's folder
STUDENT_TASKS = {
    "warmup": set(),
    "system-vm": set(),
    "kvm-api": {"own"},
    "isa-emulation": {"t1-interpret", "t2-threaded", "t3-super", "t4-translate", "t5-chain", "t6-superblock"},
    "process-vm": {"t5-observer"},
    "hll-vm": {"verifier"},
    "os-virt": {"t1-pid-uts", "t2-mount", "t3-user", "t4-net", "t5-cgroups", "t6-seccomp", "t7-caps"},
}
# the tutors' model solutions: input name -> file or folder under labs/<lab>/solution/
ISA_SOLUTIONS = {
    "t1": "t1_interpret.py",
    "t2": "t2_threaded.py",
    "t3": "t3_super.py",
    "t4": "t4_translate.py",
    "t5": "t5_chain.py",
    "t6": "t6_superblock.py",
}
SOLUTIONS = {
    "isa-emulation": ISA_SOLUTIONS,
    "kvm-api": {"program": "line.asm"},
    "process-vm": {"tool": "observer"},
    "hll-vm": {"jasmin": "jasmin"},
    "os-virt": {"box": "box.py"},
}


def test_every_lab_has_its_student_tasks_written_down() -> None:
    lab_tasks = {
        lab: {t["id"] for t in tomllib.loads((ROOT / "labs" / lab / "lab.toml").read_text())["tasks"]}
        for lab in LABS
    }
    assert set(STUDENT_TASKS) == set(LABS)
    for lab, tasks in STUDENT_TASKS.items():
        assert tasks <= lab_tasks[lab], lab
    for lab, files in SOLUTIONS.items():
        for name in files.values():
            assert (ROOT / "labs" / lab / "solution" / name).exists(), (lab, name)


def _run_and_check(
    out: Path, tmp_path: Path, lab: str, *args: str, check: tuple[str, ...] = (), shared_home: bool = False
) -> tuple[Path, dict[str, dict[str, Any]]]:
    """`vmlab lab run LAB ARGS` then `vmlab check`, both the kit's; every step must have run."""
    tmp_path.mkdir(exist_ok=True)
    report = tmp_path / "r.json"
    run = ["lab", "run", lab, "-o", str(report), "--student", KIT_STUDENT, *args]
    r = _vmlab(out, tmp_path, *run, timeout=600, shared_home=shared_home)
    assert r.returncode == 0, r.stderr[-3000:]  # every step ran: grading decides
    r = _vmlab(out, tmp_path, "check", str(report), "--timing", "advisory", "--json", *check)
    return report, {c["id"]: c for c in json.loads(r.stdout)["checks"]}


def _choices(lab: str) -> set[str]:
    """The choice questions' check ids: their key is in solution/answers.toml, which no kit holds."""
    from vmlab.labs.catalog import load_lab

    return {f"q:{q.id}" for q in load_lab(lab).questions if q.kind == "choice"}


def _failed_tasks(checks: dict[str, dict[str, Any]], lab: str) -> set[str]:
    """Tasks with a failed check that is not a question nor a timing. Nothing may be ungradable but an
    answered choice question, whose key the kit leaves out (the tutors' grade has it)."""
    assert {c["id"] for c in checks.values() if c["outcome"] == "error"} <= _choices(lab), checks
    return {
        c["task"]
        for c in checks.values()
        if c["outcome"] == "fail" and not c["id"].startswith("q:") and not c["timing"]
    }


def _untouched(checks: dict[str, dict[str, Any]], lab: str, tasks: set[str] | None = None) -> None:
    """Exactly the student's tasks fail (of `tasks` when only those ran), and every question."""
    assert _failed_tasks(checks, lab) == (STUDENT_TASKS[lab] if tasks is None else STUDENT_TASKS[lab] & tasks)
    questions = [c for c in checks.values() if c["id"].startswith("q:")]
    assert questions or tasks is not None
    assert all(c["outcome"] == "fail" for c in questions), questions


def _answers(out: Path, tmp_path: Path, lab: str) -> Path:
    """The kit's answers template filled in: each choice from the tutors' key, each written answer long
    enough; the numbers (predictions of one's own measurement) are left out."""
    from vmlab.labs.catalog import load_lab

    r = _vmlab(out, tmp_path, "lab", "answers", lab)
    assert r.returncode == 0, r.stderr
    template = tomllib.loads(r.stdout)
    key = tomllib.loads((ROOT / "labs" / lab / "solution" / "answers.toml").read_text())
    kinds = {q.id: q.kind for q in load_lab(lab).questions}
    assert set(template) == set(kinds)
    lines = []
    for qid, kind in kinds.items():
        if kind == "choice":
            lines += [f"[{qid}]", f"answer = {json.dumps(key[qid]['answer'])}"]
        elif kind == "text":
            words = " ".join(f"word{i}" for i in range(60))
            lines += [f"[{qid}]", f'answer = """{words}"""']
    path = tmp_path / "answers.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _graded_by_the_tutors(report: Path, tmp_path: Path, lab: str) -> dict[str, Any]:
    """The kit's report graded by this repository's vmlab grade, as a tutor grades a hand-in."""
    hand = tmp_path / "hand-ins" / KIT_STUDENT
    hand.mkdir(parents=True)
    (hand / "report.json").write_bytes(report.read_bytes())
    if (report.parent / "artifacts").is_dir():
        import shutil

        shutil.copytree(report.parent / "artifacts", hand / "artifacts")
    got = runner.invoke(
        app, ["grade", str(hand / "report.json"), "--lab", lab, "-o", str(tmp_path / "graded"), "--json"]
    )
    assert got.exit_code == 0, got.output
    (student,) = json.loads((tmp_path / "graded" / "class.json").read_text())["students"]
    assert "lab-rules-differ" not in {f["code"] for f in student["flags"]}, student["flags"]
    assert not [c["id"] for c in student["checks"] if c["outcome"] == "error"]
    return dict(student)


def test_warmup_runs_from_the_kit(kit: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, _ = kit
    _, checks = _run_and_check(out, tmp_path, "warmup")
    _untouched(checks, "warmup")


def test_an_untouched_isa_handout_fails_every_task_from_the_kit(
    kit: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """Every step runs from the kit (the oracle baseline too); each task fails on its skeleton."""
    out, _ = kit
    sets = [f"--set={s}.scenarios=[1,3]" for s in ("t1", "t2", "t3", "t4", "t4-staged", "t5", "t6", "oracle")]
    _, checks = _run_and_check(out, tmp_path, "isa-emulation", *sets)
    _untouched(checks, "isa-emulation")
    assert checks["oracle-S3[t1]"]["outcome"] == "fail"
    assert "NotImplementedError" in str(checks["oracle-S3[t1]"]["measured"])
    assert checks["is-student[t1]"]["outcome"] == "pass"  # the skeleton is the student's file


def test_the_isa_model_solutions_pass_from_the_kit_and_grade_here(
    kit: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """The whole lab (every step, every scenario) from the kit with the tutors' solution/ files and
    answers: every required check passes, and this repository grades the report without a flag."""
    out, _ = kit
    inputs = [f"--input={n}={ROOT / 'labs/isa-emulation/solution' / f}" for n, f in ISA_SOLUTIONS.items()]
    answers = _answers(out, tmp_path, "isa-emulation")
    report, checks = _run_and_check(out, tmp_path, "isa-emulation", *inputs, f"--input=answers={answers}")
    assert _failed_tasks(checks, "isa-emulation") == set()
    assert not [c["id"] for c in checks.values() if c["required"] and c["outcome"] != "pass"]
    assert checks["oracle-S4[t4-staged]"]["measured"] == "A=138 instructions=21516018"
    assert checks["t4-staged-blocks-S4"]["outcome"] == "pass"
    assert {checks[q]["outcome"] for q in _choices("isa-emulation")} == {"error"}  # no key in the kit
    student = _graded_by_the_tutors(report, tmp_path, "isa-emulation")
    graded = {c["id"]: c["outcome"] for c in student["checks"]}
    assert {graded[q] for q in _choices("isa-emulation")} == {"pass"}  # the tutors' key grades them
    assert not [c["id"] for c in student["checks"] if c["required"] and c["outcome"] != "pass"]
    assert student["status"] == "graded" and student["flags"] == [], student["flags"]


@pytest.mark.kvm
def test_kvm_api_from_the_kit_fails_own_until_solved(
    kit: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    from tests.conftest import unavailable

    try:
        os.close(os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC))
    except OSError as e:
        unavailable("/dev/kvm", str(e))
    out, _ = kit
    _, checks = _run_and_check(out, tmp_path / "untouched", "kvm-api")
    _untouched(checks, "kvm-api")
    assert checks["own-exits"]["outcome"] == "fail"  # the skeleton prints byte by byte
    solved = tmp_path / "solved"
    program = ROOT / "labs/kvm-api/solution/line.asm"
    report, checks = _run_and_check(out, solved, "kvm-api", f"--input=program={program}")
    assert _failed_tasks(checks, "kvm-api") == set()
    assert checks["own-output"]["outcome"] == "pass" and checks["own-exits"]["outcome"] == "pass"
    student = _graded_by_the_tutors(report, solved, "kvm-api")
    assert "lab-rules-differ" not in {f["code"] for f in student["flags"]}


@pytest.mark.slow
def test_process_vm_observer_from_the_kit(kit: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """Task t5 only (the tool builds are cached in the session's VMLAB_HOME, ~95 s each the first time)."""
    from tests.integration.procvm.conftest import need

    need("valgrind", "gcc", "make", "autoconf", "automake", "apt-get", "dpkg-source")
    out, _ = kit
    task = ("--task", "t5-observer")
    _, checks = _run_and_check(out, tmp_path / "untouched", "process-vm", *task, check=task, shared_home=True)
    _untouched(checks, "process-vm", {"t5-observer"})
    solved = tmp_path / "solved"
    tool = ROOT / "labs/process-vm/solution/observer"
    _, checks = _run_and_check(
        out, solved, "process-vm", *task, f"--input=tool={tool}", check=task, shared_home=True
    )
    assert _failed_tasks(checks, "process-vm") == set()


@pytest.mark.java
def test_hll_vm_verifier_from_the_kit(kit: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """Task verifier only: the skeleton's Mine.j does not meet its own expectation line yet."""
    from tests.conftest import probe_command, unavailable

    for argv in (["java", "-version"], ["sh", "-c", "command -v jasmin"]):
        why = probe_command(argv)
        if why is not None:
            unavailable(argv[-1].split()[-1], why)
    out, _ = kit
    task = ("--task", "verifier")
    _, checks = _run_and_check(out, tmp_path / "untouched", "hll-vm", *task, check=task)
    _untouched(checks, "hll-vm", {"verifier"})
    # the kit's own examples (jasmin/), handed in as one's work, count for nothing
    examples = out / "labs/hll-vm/jasmin"
    _, checks = _run_and_check(
        out, tmp_path / "examples", "hll-vm", *task, f"--input=jasmin={examples}", check=task
    )
    assert checks["jasmin-own-work"]["outcome"] == "fail" and _failed_tasks(checks, "hll-vm") == {"verifier"}
    solved = ROOT / "labs/hll-vm/solution/jasmin"
    _, checks = _run_and_check(
        out, tmp_path / "solved", "hll-vm", *task, f"--input=jasmin={solved}", check=task
    )
    assert _failed_tasks(checks, "hll-vm") == set()


@pytest.mark.libvirt
@pytest.mark.docker
@pytest.mark.slow
def test_system_vm_from_the_kit(kit: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """One comparison run: a system-vm kit has no file of the student's, only questions to answer."""
    from tests.integration.conftest import require_runtime

    require_runtime("libvirt")
    require_runtime("docker")
    out, _ = kit
    # the compare step's tasks: the kit is the same for the others, which their own tests run
    tasks = {"t1-startup", "t2-memory", "t3-traps", "t4-syscall-path"}
    selected = [f"--task={t}" for t in sorted(tasks)]
    _, checks = _run_and_check(
        out, tmp_path, "system-vm", "--set=compare.runs=1", *selected, check=tuple(selected), shared_home=True
    )
    _untouched(checks, "system-vm", tasks)


@pytest.mark.slow
def test_os_virt_from_the_kit(kit: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """The box's tasks (not t8, which only times runtimes): the skeleton isolates nothing, the model
    box passes; as root, with the tiny image's root file system from the session's home."""
    from tests.integration.conftest import require_runtime

    if os.geteuid() != 0:
        pytest.skip("the cgroup task needs root; tests/integration/nonroot runs the lab as a student")
    require_runtime("docker")
    out, _ = kit
    tasks = [a for t in sorted(STUDENT_TASKS["os-virt"]) for a in ("--task", t)]
    _, checks = _run_and_check(
        out, tmp_path / "untouched", "os-virt", *tasks, check=tuple(tasks), shared_home=True
    )
    _untouched(checks, "os-virt", STUDENT_TASKS["os-virt"])
    box = ROOT / "labs/os-virt/solution/box.py"
    solved = tmp_path / "solved"
    _, checks = _run_and_check(
        out, solved, "os-virt", *tasks, f"--input=box={box}", check=tuple(tasks), shared_home=True
    )
    assert _failed_tasks(checks, "os-virt") == set()
