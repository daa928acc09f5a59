"""Shared code knows no lab: a lab is its folder (labs/<lab>/) and its package (src/vmlab/<pkg>/), and
no other module of src/vmlab imports a lab package or names a lab in a string. A new lab then edits
no shared file (docs/lab-contract.md, "Adding a lab").

The labs and their packages are read here from labs/*/lab.toml with tomllib (every "module:function"
a lab.toml names), not from vmlab's own catalog, so the test does not trust the code it checks.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import vmlab

SRC = Path(vmlab.__file__).parent
LABS = Path(__file__).resolve().parents[3] / "labs"

# The one string of shared code equal to a lab's name that is not the lab: a step parameter saying how
# often a figure is measured (a JIT's warm-up iterations), listed among the keys a re-run may change.
NOT_A_LAB = {("grade/measuring.py", "warmup")}
# Generated from the labs' lab.toml `[lab] cli` (python -m vmlab.cli.reindex), not written by hand: the
# index `vmlab --help` lists commands from; tests/unit/core/test_cli_startup.py holds it to lab.toml.
GENERATED = {"cli/listing.py"}


def _specs(node: Any) -> Iterator[str]:
    """Every string of a lab.toml that names a module ("module:function" or a dotted module)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from _specs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _specs(value)
    elif isinstance(node, str) and re.fullmatch(r"vmlab(\.\w+)+(:\w+)?", node):
        yield node


def _labs() -> tuple[set[str], set[str]]:
    names: set[str] = set()
    packages: set[str] = set()
    for path in sorted(LABS.glob("*/lab.toml")):
        data = tomllib.loads(path.read_text())
        names.add(data["lab"]["name"])
        packages.update(spec.split(":")[0].split(".")[1] for spec in _specs(data))
    return names, packages


NAMES, PACKAGES = _labs()


def test_the_labs_and_their_packages_are_found() -> None:
    """Written down by hand from labs/: seven labs, each with its package (warmup's is vmlab.warmup)."""
    assert {"hll-vm", "isa-emulation", "kvm-api", "os-virt", "process-vm", "system-vm", "warmup"} == NAMES
    assert {"hllvm", "isa", "kvmapi", "osvirt", "procvm", "systemvm", "warmup"} == PACKAGES
    assert not (SRC / "experiments").exists()  # system-vm's and warmup's runners live in their packages


def _shared_modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.parts[0] not in PACKAGES and rel.as_posix() not in GENERATED:
            yield rel.as_posix(), ast.parse(path.read_text(), str(path))


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        if node.module == "vmlab":  # from vmlab import isa
            return [f"vmlab.{a.name}" for a in node.names]
        return [node.module]
    return []


def _lab_words() -> re.Pattern[str]:
    names = "|".join(re.escape(n) for n in sorted(NAMES))
    packages = "|".join(re.escape(p) for p in sorted(PACKAGES))
    return re.compile(rf"(?<![\w.-])({names})(?![\w-])|\bvmlab\.({packages})\b")


def test_no_shared_module_imports_a_lab_package_or_names_a_lab() -> None:
    words = _lab_words()
    found: list[str] = []
    for rel, tree in _shared_modules():
        for node in ast.walk(tree):
            for module in _imported(node):
                if module.split(".")[:2][-1] in PACKAGES and module.startswith("vmlab."):
                    found.append(f"{rel}:{getattr(node, 'lineno', 0)} imports {module}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for m in words.finditer(node.value):
                    if (rel, m.group(0)) not in NOT_A_LAB:
                        found.append(f"{rel}:{node.lineno} names {m.group(0)!r}")
    assert found == []


def test_the_check_catches_what_it_looks_for(tmp_path: Path) -> None:
    """The scan itself, on text written to break the rule each way (it cannot pass vacuously)."""
    words = _lab_words()
    tree = ast.parse(
        "from vmlab.procvm.runs import require\n"
        "import vmlab.systemvm.compare\n"
        "from vmlab import warmup\n"
        'HINT = "run vmlab lab run process-vm first"\n'
        'SPEC = "vmlab.hllvm.lab:jit_modes"\n'
        'FINE = "kvm-apis, vmlab.isabel, sub-system-vm-ish, warmups"\n'
    )
    imports = [m for n in ast.walk(tree) for m in _imported(n) if m.split(".")[1] in PACKAGES]
    assert imports == ["vmlab.procvm.runs", "vmlab.systemvm.compare", "vmlab.warmup"]
    named = [
        m.group(0)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
        for m in words.finditer(n.value)
    ]
    assert named == ["process-vm", "vmlab.hllvm"]


def test_lab_command_groups_come_from_lab_toml() -> None:
    """The CLI registers a lab's group from its lab.toml `[lab] cli`, never from a list in code."""
    from vmlab.labs.catalog import cli_registrars

    declared = {
        tomllib.loads(p.read_text())["lab"]["name"]: tomllib.loads(p.read_text())["lab"].get("cli")
        for p in LABS.glob("*/lab.toml")
    }
    assert dict(cli_registrars()) == {k: v for k, v in declared.items() if v}
