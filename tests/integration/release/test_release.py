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
RERUN_HOOKS = {"vmlab.isa.rerun", "vmlab.kvmapi.rerun"}
# needed by the shipped steps: vmlab.isa.lab and the worker that runs a student's engine import the
# registry (load_engine_file, bind_params, as_result) and the worker the reference interpreter (the
# oracle of a program file and --diagnose's bisection)
KEPT = {
    "vmlab.isa.registry": {"vmlab.isa.lab", "vmlab.isa.worker", "vmlab.isa.bench", "vmlab.isa.cli"},
    "vmlab.isa.reference": {"vmlab.isa.worker", "vmlab.isa.cli"},
}
LEFT_OUT_MODULES = {
    "src/vmlab/isa/engines/": "vmlab.isa.engines",
    "src/vmlab/isa/rerun.py": "vmlab.isa.rerun",
    "src/vmlab/kvmapi/rerun.py": "vmlab.kvmapi.rerun",
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
]
# symbols only the solutions hold: the model observer's helper call, the reference engines' translator
SOLUTION_SYMBOLS = [
    "addStmtToIRSB(sbOut, IRStmt_Dirty(di));",
    "class ChainingTranslator",
    "def translate_unchained",
    "st->tag == Ist_IMark",
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
    assert set(LABS) == {"warmup", "system-vm", "kvm-api", "isa-emulation", "process-vm", "hll-vm"}
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
    from vmlab.labs.model import parse_lab
    from vmlab.release import strip_tutor_tables

    out, data = kit
    assert data["removed_tables"] == {
        "labs/isa-emulation/lab.toml": ["rerun", "bounds"],
        "labs/kvm-api/lab.toml": ["rerun", "bounds"],
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


def _kit_env(out: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VMLAB_LABS", "PYTHONPATH")}
    env.update(PYTHONPATH=str(out / "src"), VMLAB_LABS=str(out / "labs"), VMLAB_HOME=str(home))
    return env


def _vmlab(out: Path, tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", VMLAB, *args],
        cwd=tmp_path,
        env=_kit_env(out, tmp_path / "home"),
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


@pytest.mark.parametrize("lab", LABS)
def test_lab_show_from_the_kit(kit: tuple[Path, dict[str, Any]], tmp_path: Path, lab: str) -> None:
    out, _ = kit
    r = _vmlab(out, tmp_path, "lab", "show", lab, "--json")
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["lab"]["name"] == lab and shown["rerun"] is None and shown["bounds"] == []


def test_warmup_runs_from_the_kit(kit: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, _ = kit
    r = _vmlab(out, tmp_path, "lab", "run", "warmup", "-o", "r.json")
    assert r.returncode == 0, r.stderr
    r = _vmlab(out, tmp_path, "check", "r.json", "--timing", "advisory")
    assert r.returncode == 0, r.stdout + r.stderr


def _isa_t1(
    out: Path, tmp_path: Path, *extra: str, scenarios: str = "[1]"
) -> tuple[int, dict[str, dict[str, Any]]]:
    sets = ["--set", f"t1.scenarios={scenarios}", "--set", "switch.scenarios=[1]"]
    r = _vmlab(
        out, tmp_path, "lab", "run", "isa-emulation", "--task", "t1-interpret", *sets, "-o", "r.json", *extra
    )
    assert r.returncode == 3, r.stderr  # the switch step cannot run: the reference engines are not shipped
    assert "engine 'switch' is not installed" in r.stderr
    r = _vmlab(out, tmp_path, "check", "r.json", "--task", "t1-interpret", "--json")
    return r.returncode, {c["id"]: c for c in json.loads(r.stdout)["checks"]}


def test_an_untouched_isa_handout_fails_from_the_kit(
    kit: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, _ = kit
    code, checks = _isa_t1(out, tmp_path)
    assert code == 1  # a required check failed: the skeleton's
    assert checks["oracle-S1[t1]"]["outcome"] == "fail"
    assert "NotImplementedError" in str(checks["oracle-S1[t1]"]["measured"])


def test_a_solved_isa_task_passes_from_the_kit(kit: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    # the worker, the registry and the reference interpreter the kit keeps run a student's engine
    from tests.integration.isa.students import write

    out, _ = kit
    code, checks = _isa_t1(out, tmp_path, "--input", f"t1={write(tmp_path, 't1')}", scenarios="[1,2,3,4]")
    for n in (1, 2, 3, 4):
        assert checks[f"oracle-S{n}[t1]"]["outcome"] == "pass", checks[f"oracle-S{n}[t1]"]
    assert checks["is-student[t1]"]["outcome"] == "pass"
    # what the kit cannot grade: vmlab's own engine, which it leaves out (exit 3: not graded, no fail)
    assert checks["oracle-S1[switch]"]["outcome"] == "error"
    assert code == 3
