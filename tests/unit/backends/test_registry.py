"""What shared code reads from the runtime registry: doctor rows, `requires`, the test parameters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vmlab.runtime_registry import (
    RUNTIMES,
    Health,
    ProbeCommand,
    RuntimeInfo,
    probe,
    register,
    unregister,
)

BROKEN = Health("fail", "the widget daemon is gone", "start widgetd")


def broken_probe() -> Health:
    return BROKEN


def raising_probe() -> Health:
    raise RuntimeError("probe bug\nsecond line")


@pytest.fixture
def widget() -> Iterator[RuntimeInfo]:
    info = register(
        RuntimeInfo(
            "widget",
            "container",
            "vmlab.nonexistent",
            "a test runtime",
            requirement="widgets",
            probe=f"{__name__}:broken_probe",
            test_probes=(ProbeCommand("widgets", ("true",)),),
        )
    )
    yield info
    unregister("widget")
    assert "widget" not in RUNTIMES


def test_doctor_shows_a_registered_runtime_under_its_requirement_name(
    widget: RuntimeInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vmlab.host.doctor import runtime_rows

    # the registry holds the test runtime alone here: the real ones would probe their daemons
    monkeypatch.setattr("vmlab.runtime_registry.RUNTIMES", {"widget": widget})
    rows = {r.name: r for r in runtime_rows()}
    assert list(rows) == ["widgets"]
    assert (rows["widgets"].status, rows["widgets"].detail, rows["widgets"].fix) == (
        "fail",
        "widget: the widget daemon is gone",  # the runtime named where the row's name differs
        "start widgetd",
    )
    assert rows["widgets"].data["runtime"] == "widget"


def test_requires_maps_both_names_to_the_runtime_probe(widget: RuntimeInfo) -> None:
    from vmlab.host.requirements import unmet

    for name in ("widgets", "widget"):
        (found,) = unmet([name])
        assert found.one_line() == f"{name}: the widget daemon is gone (fix: start widgetd)"


def test_a_probe_that_raises_is_a_failed_row_of_one_line(widget: RuntimeInfo) -> None:
    register(RuntimeInfo("widget2", "vm", "vmlab.nonexistent", "x", probe=f"{__name__}:raising_probe"))
    try:
        h = probe("widget2")
        assert h.status == "fail" and h.detail.endswith("failed: probe bug")
    finally:
        unregister("widget2")


def test_a_default_runtime_cannot_be_replaced_or_removed() -> None:
    from vmlab.errors import UsageError

    with pytest.raises(UsageError, match="registered already"):
        register(RuntimeInfo("docker", "container", "elsewhere", "impostor"))
    unregister("docker")
    assert "docker" in RUNTIMES
    with pytest.raises(UsageError, match="kind"):
        register(RuntimeInfo("native2", "native", "x", "the host is no runtime"))


def test_each_builtin_runtime_has_a_probe_and_an_independent_test_probe() -> None:
    for name in ("docker", "docker-runsc", "libvirt"):
        info = RUNTIMES[name]
        assert info.probe and info.test_probes and info.test_marks
        assert all(not p.argv[0].startswith(("vmlab", "python")) for p in info.test_probes)
    assert RUNTIMES["docker-runsc"].requirement_name == "sandbox"


def test_shared_code_imports_no_runtime_module() -> None:
    """The lifecycle verbs, the CLI and `requires` reach runtimes through the registry only."""
    import ast
    from pathlib import Path

    import vmlab

    src = Path(vmlab.__file__).parent
    folders = tuple(f"vmlab.backends.{d.name}" for d in (src / "backends").iterdir() if d.is_dir())
    assert {"vmlab.backends.docker", "vmlab.backends.libvirt", "vmlab.backends.podman"} <= set(folders)
    for rel in ("cli/lifecycle.py", "backends/lifecycle.py", "host/requirements.py", "host/doctor.py"):
        tree = ast.parse((src / rel).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in imported if m.startswith(folders)}, rel
