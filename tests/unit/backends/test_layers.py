"""Layers point one way: guest/, images/ and host/ sit below the runtimes and the labs, so the doctor
and a lab's `requires` never import a runtime or the kvm-api lab to ask one question."""

from __future__ import annotations

import ast
from pathlib import Path

import vmlab

SRC = Path(vmlab.__file__).parent
LOWER = ("guest", "images", "host")
UPPER = ("vmlab.backends", "vmlab.kvmapi", "vmlab.labs", "vmlab.warmup", "vmlab.systemvm", "vmlab.cli")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_lower_layers_import_no_runtime_and_no_lab() -> None:
    upward = {
        f"{path.relative_to(SRC)} imports {name}"
        for layer in LOWER
        for path in sorted((SRC / layer).rglob("*.py"))
        for name in _imports(path)
        if name.startswith(UPPER)
    }
    assert not upward


def test_the_kvm_and_libvirt_probes_exist_once() -> None:
    from vmlab import kvmapi
    from vmlab.backends.libvirt import adapter as libvirt_adapter
    from vmlab.host import kvm, libvirt

    assert kvmapi.probe is kvm.probe
    assert libvirt_adapter.probe is libvirt.probe
    assert not (SRC / "backends" / "uri.py").exists()  # the URI choice lives in host/libvirt.py alone
    assert "libvirt.open(" not in (SRC / "host" / "doctor.py").read_text()
    assert "libvirt.open(" not in "".join(
        p.read_text() for p in (SRC / "backends" / "libvirt").glob("*.py") if p.name != "adapter.py"
    )
