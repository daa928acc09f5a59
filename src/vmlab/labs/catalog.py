"""Find labs and what their lab.toml points to (step runners, views, CLI groups).

Everything a lab brings is named in its lab.toml as "module:function" and imported only when used, so
a lab that needs libvirt never breaks one that does not, and adding a lab edits no shared file.
"""

from __future__ import annotations

import importlib
import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmlab.errors import LabError

if TYPE_CHECKING:
    from vmlab.spec.lab import Lab


def labs_roots() -> list[Path]:
    """Where labs live: the folders in VMLAB_LABS (os.pathsep-separated), else labs/ of the checkout."""
    env = os.environ.get("VMLAB_LABS")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [Path(__file__).resolve().parents[3] / "labs"]


def lab_names() -> list[str]:
    names = {p.parent.name for root in labs_roots() for p in root.glob("*/lab.toml")}
    return sorted(names)


def lab_path(name: str) -> Path:
    for root in labs_roots():
        p = root / name / "lab.toml"
        if p.is_file():
            return p
        if p.exists():
            raise LabError(f"{p} is not a regular file", hint="a lab is a folder holding a lab.toml file")
    known = ", ".join(lab_names()) or "none"
    raise LabError(f"no lab named {name!r} (known: {known})", hint="run 'vmlab lab ls'")


def lab_dir(name: str) -> Path:
    """The lab's folder: the one resolver of a lab's data files for code that is not a step (a step
    has it as ctx.lab_dir)."""
    return lab_path(name).parent


def load_lab(name: str) -> Lab:
    """The lab called `name`, read once: it carries its folder (`lab.folder`) and rules' digest."""
    from vmlab.spec.lab import parse_lab  # pydantic: not at import, the CLI's start-up imports this

    return parse_lab(lab_path(name))


def lab_sha256(name: str) -> str:
    """The digest of the rules of the lab called `name` (spec.lab.rules_sha256), without validating it."""
    from vmlab.spec.lab import read_lab_toml, rules_sha256

    return rules_sha256(read_lab_toml(lab_path(name)))


def resolve(spec: str, what: str = "runner") -> Callable[..., Any]:
    """Import "module:function" and return the function; one clear line when it is not there."""
    module_name, _, func_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise LabError(f"{what} {spec!r}: cannot import {module_name}: {e}") from None
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise LabError(f"{what} {spec!r}: {module_name} has no function {func_name}")
    return fn  # type: ignore[no-any-return]


def view(lab: Lab, which: str) -> Callable[..., Any] | None:
    """The lab's `table` or `plots` view, or None when it declares none."""
    spec = getattr(lab.lab.views, which)
    return resolve(spec, f"view {which}") if spec else None


def usable_labs(warn: Callable[[str], None]) -> list[Lab]:
    """Every lab that loads, for listings: a broken lab.toml is one `warn` line and left out, so one
    bad folder in VMLAB_LABS never hides the others."""
    labs: list[Lab] = []
    for name in lab_names():
        try:
            labs.append(load_lab(name))
        except LabError as e:
            warn(f"lab {name} skipped: {e.one_line()}")
    return labs


def cli_registrars(warn: Callable[[str], None] | None = None) -> list[tuple[str, str]]:
    """(lab name, "module:register") of every lab that brings a command group, read without pydantic.

    Runs at every CLI start, so it reads only each lab.toml's [lab] table (`_lab_table`); a lab.toml
    whose [lab] does not parse is left out with one `warn` line (the same line `vmlab lab ls` gives),
    never breaking `vmlab --help`. A fault further down the file is said by the commands that load
    the lab (`vmlab lab ls`, `lab run`, `check`), not by every start-up.
    """
    found: list[tuple[str, str]] = []
    for name in lab_names():
        try:
            meta = _lab_table(lab_path(name))
        except LabError as e:
            if warn is not None:
                warn(f"lab {name} skipped: {e.one_line()}")
            continue
        spec = meta.get("cli")
        if isinstance(spec, str) and ":" in spec:
            found.append((name, spec))
    return found


_LAB_HEADER = re.compile(r"^[ \t]*\[[ \t]*lab[ \t]*\][ \t]*(?:#.*)?$", re.MULTILINE)
_ANY_HEADER = re.compile(r"^[ \t]*\[", re.MULTILINE)


def _lab_table(path: Path) -> dict[str, Any]:
    """The [lab] table of a lab.toml, parsing only the text from its `[lab]` line to the next table
    header (the whole file of a lab is about 3 ms of tomllib; every start-up reads all labs).

    A cut that does not parse (a multi-line string or array holding a line that starts with "[") or a
    file without a plain `[lab]` line is read whole, so a fault is named with the file's own line
    numbers. A cut that parses holds the whole table: it ends at a header line, and a line starting
    with "[" inside a string or an array would have left the cut unclosed.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    head = _LAB_HEADER.search(text)
    if head is not None:
        end = _ANY_HEADER.search(text, head.end())
        try:
            table = tomllib.loads(text[head.start() : end.start() if end else len(text)]).get("lab")
        except (tomllib.TOMLDecodeError, RecursionError):
            table = None
        if isinstance(table, dict):
            return table
    from vmlab.spec.lab import read_lab_toml  # the whole file, and its one line when it is broken

    whole = read_lab_toml(path).get("lab")
    return whole if isinstance(whole, dict) else {}
