"""A runtime is a folder: each registry line names a module and a probe function that import (from the
runtime's own folder, not from the doctor), no module of backends/ grows past 400 lines, and the
Docker modules import each other one way (errors below the backend and the counter)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import vmlab
from vmlab.runtime_registry import RUNTIMES

SRC = Path(vmlab.__file__).parent
BUILTIN = ("docker", "docker-runsc", "libvirt", "podman")


@pytest.mark.parametrize("name", BUILTIN)
def test_each_registry_line_names_an_importable_module_and_probe_in_its_folder(name: str) -> None:
    info = RUNTIMES[name]
    folder = "vmlab.backends." + ("docker" if name.startswith("docker") else name) + "."
    module = importlib.import_module(info.module)
    assert callable(module.open_runtime)
    probe_module, _, func = info.probe.partition(":")
    assert info.module.startswith(folder) and probe_module.startswith(folder)
    assert callable(getattr(importlib.import_module(probe_module), func))


def test_no_module_of_backends_is_longer_than_400_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in sorted((SRC / "backends").rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_docker_errors_and_the_counter_import_no_backend() -> None:
    """The circle docker backend <-> strace counter is gone: both import the errors module instead."""
    docker = SRC / "backends" / "docker"
    assert "vmlab.backends.docker.backend" not in _imports(docker / "errors.py")
    assert "vmlab.backends.docker.backend" not in _imports(docker / "strace.py")


def test_the_doctor_holds_no_runtime_probe_and_imports_no_requirements() -> None:
    """The runtimes' probes live in their folders; doctor -> requirements was one half of a circle."""
    doctor = SRC / "host" / "doctor.py"
    text = doctor.read_text()
    assert "def _probe_docker" not in text and "def _probe_sandbox" not in text
    assert "def _probe_libvirt" not in text
    assert "vmlab.host.requirements" not in _imports(doctor)
    assert all(not RUNTIMES[n].probe.startswith("vmlab.host.") for n in BUILTIN)


def test_the_runsc_registration_is_read_in_one_place() -> None:
    """The sandbox probe and the docker-runsc runtime ask the same function whether runsc is
    registered with Docker: `"Runtimes"` (dockerd's info key) is read in the probe module alone."""
    readers = sorted(
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if '.get("Runtimes")' in p.read_text()
    )
    assert readers == ["backends/docker/probe.py"]


@pytest.mark.parametrize(
    "rel", ["backends/lifecycle.py", "backends/__init__.py", "cli/lifecycle.py", "host/requirements.py"]
)
def test_shared_lifecycle_code_branches_on_no_runtime_name(rel: str) -> None:
    """`if runtime == "libvirt"` is gone: where to look and how to reach an instance are the runtime's
    answers (listing_scopes, shell_argv), so no string in this code is a runtime's name."""
    tree = ast.parse((SRC / rel).read_text())
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert not literals & set(BUILTIN)


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_backends_import_graph_has_no_circle() -> None:
    """Every import counts, also a lazy one or one for type checking only: a circle is a circle."""
    paths = {_module_name(p): p for p in (SRC / "backends").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)
        graph[name] = {d for d in deps if d in paths and d != name}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(graph[start])
        while todo:
            n = todo.pop()
            if n == goal:
                return True
            if n not in seen:
                seen.add(n)
                todo.extend(graph[n])
        return False

    circles = sorted(f"{a} <-> {b}" for a in graph for b in graph[a] if reaches(b, a))
    assert circles == []
