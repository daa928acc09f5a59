"""The tools labs declare (`[tools.NAME]` in lab.toml) as vmlab.host.tools specs: for a run (its steps'
`requires` and the versions its report records), for `vmlab doctor` (every lab's tools) and for a lab's
own code (the package to name when a program it runs is missing)."""

from __future__ import annotations

from collections.abc import Callable

from vmlab.errors import LabError
from vmlab.host.tools import NUMBER, ToolSpec
from vmlab.spec.lab import Lab
from vmlab.spec.tables import Tool


def spec(name: str, tool: Tool) -> ToolSpec:
    program = tool.program or name
    return ToolSpec(
        name=name,
        program=program,
        package=tool.package,
        version=tuple(tool.version) if tool.version is not None else (program, "--version"),
        pattern=tool.pattern or NUMBER,
        note=tool.note,
    )


def lab_tools(lab: Lab) -> dict[str, ToolSpec]:
    """The lab's declared tools by name."""
    return {name: spec(name, tool) for name, tool in lab.tools.items()}


def every_lab_tool(warn: Callable[[str], None]) -> list[ToolSpec]:
    """The tools of every lab that loads, each name once (the first lab's declaration; a lab that
    declares the same name otherwise is one `warn` line)."""
    from vmlab.labs.catalog import usable_labs

    found: dict[str, tuple[str, ToolSpec]] = {}
    for lab in usable_labs(warn):
        for name, s in lab_tools(lab).items():
            first = found.setdefault(name, (lab.lab.name, s))
            if first[1] != s:
                warn(
                    f"lab {lab.lab.name} declares tool {name} otherwise than lab {first[0]} "
                    f"(the doctor shows {first[0]}'s)"
                )
    return [s for _, s in found.values()]


def install_hint(lab: str, program: str) -> str:
    """The fix "apt-get install PACKAGE (or make setup)" for `program` as `lab` declares it (by tool
    name or by program); the program's own name as the package when the lab declares neither."""
    from vmlab.labs.catalog import load_lab

    try:  # read only when a program is missing, never cached (VMLAB_LABS may change)
        tools = lab_tools(load_lab(lab))
    except LabError:  # a broken lab.toml must not hide the missing program behind another error
        tools = {}
    found = tools.get(program) or next((t for t in tools.values() if t.program == program), None)
    return found.install_hint() if found else f"apt-get install {program} (or make setup)"
