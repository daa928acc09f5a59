"""The re-run image holds what a student's kit holds, and the container refuses vmlab's own solutions.

No Docker: the image's file list is computed here, the import guard runs in a fresh interpreter. What
counts as a solution comes from the lab.toml files, read with tomllib, and the files a solution has are
found by Python's own import machinery on this host (where the full vmlab is installed).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from vmlab.errors import BackendError
from vmlab.grade import sandbox
from vmlab.spec.tables import Rerun

REPO = Path(__file__).resolve().parents[3]
GRADE = REPO / "src" / "vmlab" / "grade"


@pytest.fixture(autouse=True)
def _repo_labs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VMLAB_LABS", raising=False)  # the catalog is this checkout's labs/


def _declared() -> tuple[set[str], set[str]]:
    """(entry modules, solutions) as every labs/*/lab.toml's [rerun] writes them."""
    entry: set[str] = set()
    solutions: set[str] = set()
    for toml in sorted((REPO / "labs").glob("*/lab.toml")):
        rerun = tomllib.loads(toml.read_text()).get("rerun") or {}
        entry |= set(rerun.get("modules", []))
        solutions |= set(rerun.get("solutions", []))
    return entry, solutions


def _files_of(module: str) -> list[Path]:
    """Every file of a module, or of a package and everything under it, on this host."""
    spec = importlib.util.find_spec(module)
    assert spec is not None, module
    if spec.submodule_search_locations:
        return [
            f
            for d in spec.submodule_search_locations
            for f in Path(d).rglob("*")
            if f.is_file() and "__pycache__" not in f.parts
        ]
    assert spec.origin is not None
    return [Path(spec.origin)]


def _in_site(f: Path) -> str:
    """Where a vmlab file lands in the image, relative to site-packages: vmlab/isa/gen.py."""
    import vmlab

    return f.resolve().relative_to(Path(vmlab.__file__).resolve().parents[1]).as_posix()


def test_the_image_leaves_out_every_declared_solution_and_keeps_the_entry_modules() -> None:
    entry, solutions = _declared()
    # what the brief names as solution material of the ISA lab, and what its container runs
    assert {"vmlab.isa.engines", "vmlab.isa.registry", "vmlab.isa.reference"} <= solutions
    assert {"vmlab.isa.rerun", "vmlab.kvmapi.rerun", "vmlab.kvmapi.vmm"} <= entry
    items = sandbox._sources()
    dsts = {dst for dst, _ in items}
    srcs = {src.resolve() for _, src in items}
    site = next(d for d in dsts if d.endswith("/site-packages/vmlab/__init__.py")).removesuffix(
        "vmlab/__init__.py"
    )

    solution_files = [f for m in sorted(solutions) for f in _files_of(m)]
    assert any(f.name == "switch.py" for f in solution_files)  # the engine the cheat imports is among them
    for f in solution_files:
        assert f.resolve() not in srcs, f
        assert site + _in_site(f) not in dsts, f
    # nor a copy of one under another name
    digests = {hashlib.sha256(f.read_bytes()).hexdigest() for f in solution_files if f.suffix == ".py"}
    copies = [
        d for d, s in items if s.suffix == ".py" and hashlib.sha256(s.read_bytes()).hexdigest() in digests
    ]
    assert copies == [] or all(Path(c).name == "__init__.py" for c in copies), copies
    assert not any("/vmlab/isa/engines/" in d for d in dsts)

    for m in sorted(entry):
        for f in _files_of(m):
            assert site + _in_site(f) in dsts, m
    assert site + "vmlab/grade/sandbox.py" in dsts  # the guard the container installs
    assert site + "vmlab/isa/machine.py" in dsts  # the kit's ISA definitions stay (students import them)


def test_an_entry_module_importing_a_solution_stops_the_build() -> None:
    # vmlab.isa.bench imports vmlab.isa.registry at its top (see its source)
    plan = sandbox.ImagePlan(entry=("vmlab.isa.bench",), solutions=("vmlab.isa.registry",))
    with pytest.raises(BackendError, match=r"vmlab\.isa\.registry"):
        sandbox._site_files(plan)


def test_module_of_and_is_solution() -> None:
    assert sandbox.module_of(Path("vmlab/isa/engines/switch.py")) == "vmlab.isa.engines.switch"
    assert sandbox.module_of(Path("vmlab/isa/engines/__init__.py")) == "vmlab.isa.engines"
    assert sandbox.module_of(Path("pkg/fast.cpython-311-x86_64-linux-gnu.so")) == "pkg.fast"
    assert sandbox.is_solution("vmlab.isa.engines.bt_block", ["vmlab.isa.engines"])
    assert sandbox.is_solution("vmlab.isa.engines", ["vmlab.isa.engines"])
    assert not sandbox.is_solution("vmlab.isa.engines_notes", ["vmlab.isa.engines"])
    assert not sandbox.is_solution("vmlab.isa", ["vmlab.isa.engines"])


GUARD_PROBE = """\
import json
import vmlab.isa.engines.switch  # imported before the guard: it must be forgotten
from vmlab.grade.sandbox import SolutionRefused, install_guard

guard = install_guard(["vmlab.isa.engines", "vmlab.isa.reference"])
out = {}
for stmt in STATEMENTS:
    try:
        exec(stmt, {})
        out[stmt] = None
    except SolutionRefused as e:
        out[stmt] = e.name
print(json.dumps({"out": out, "refused": guard.refused}))
"""


def test_the_guard_refuses_every_way_of_importing_a_solution() -> None:
    statements = {
        "from vmlab.isa.engines.switch import run": "vmlab.isa.engines.switch",
        "import importlib as i; i.import_module('vmlab' + '.isa.engines.table')": "vmlab.isa.engines.table",
        "__import__('vmlab.isa.reference')": "vmlab.isa.reference",
        "from vmlab.isa import engines": "vmlab.isa.engines",
        # find_spec imports only the parent package: that is the import refused
        "import importlib.util; importlib.util.find_spec('vmlab.isa.engines.x86')": "vmlab.isa.engines",
        "import vmlab.isa.machine": None,  # the kit's own modules stay importable
        "from vmlab.isa.gen import scenario_program": None,
    }
    code = f"STATEMENTS = {list(statements)!r}\n" + GUARD_PROBE
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got["out"] == statements
    assert got["refused"] == list(dict.fromkeys(m for m in statements.values() if m is not None))
    assert issubclass(sandbox.SolutionRefused, ImportError)


def test_uses_reference_message_names_the_module_and_what_it_is() -> None:
    from vmlab.isa.rerun import uses_reference_message

    assert uses_reference_message("t1", ["vmlab.isa.engines.switch"]) == (
        "t1 imports vmlab.isa.engines.switch, one of vmlab's reference engines: "
        "the re-run grades your own code"
    )


def test_a_lab_cannot_run_its_own_solution_in_the_container() -> None:
    with pytest.raises(ValidationError, match="solution material"):
        Rerun(hook="m.rerun:rerun", modules=["m.engines.switch"], solutions=["m.engines"])
    with pytest.raises(ValidationError):
        Rerun(hook="m.rerun:rerun", solutions=["not a module"])


def _names_in_code(path: Path) -> list[str]:
    """Imported modules and string constants of a module, docstrings left out (they may cite examples)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            names.append(node.value)
    return names


def test_no_grade_module_names_a_lab_package() -> None:
    """The shared grading code knows labs only through their lab.toml: a lab's package named here would
    be a lab that cannot be added or removed without editing grade/."""
    packages = {"vmlab.isa", "vmlab.kvmapi"}
    for toml in (REPO / "labs").glob("*/lab.toml"):
        rerun = tomllib.loads(toml.read_text()).get("rerun") or {}
        for name in [rerun.get("hook", ""), *rerun.get("modules", []), *rerun.get("solutions", [])]:
            if name.count(".") >= 1:
                packages.add(".".join(name.split(":")[0].split(".")[:2]))
    modules = sorted(GRADE.glob("*.py"))
    assert GRADE / "sandbox.py" in modules and GRADE / "rerun.py" in modules
    for path in modules:
        for name in _names_in_code(path):
            hits = [p for p in packages if name == p or p + "." in name or f"{p}:" in name]
            assert not hits, f"{path.name} names {name!r}"
