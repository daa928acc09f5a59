"""`vmlab release LAB... -o DIR`: the student kit, the part of this repository a student needs to run
those labs, as nbgrader's `release` or `otter assign` make it.

The tutors keep this repository; a course makes the students' repository from a release. The kit holds
pyproject.toml, src/vmlab, the chosen labs/<lab>/ folders (task sheets, skeletons, templates), the
Makefile, scripts/, vm-images/, schemas/, the Vagrantfile, README.md and docs/ without the tutors'
pages. It leaves out:

- every lab's `solution/` folder (the model solutions the tests use) and tests/, ci/, .ci/;
- the modules the labs declare as vmlab's own answers (`[rerun] solutions` of every lab.toml) and
  their re-run hooks (`[rerun] hook`), except those the shipped code itself imports: a kit must run.
  Which ones stay is derived, not listed: every module that ships is parsed, and a declared module
  that one of them imports (at module level or inside a function; `if TYPE_CHECKING:` imports do not
  run) ships too, with its importers named in the result. Modules reached only by name (the engine
  registry's table) are not imports, so a kit without them says "not installed" where they are asked;
- the tutors' tables of each lab.toml (`[rerun]`, `[[bounds]]`): removed table by table, comments
  kept, and the result checked with tomllib to equal the original without those keys, then parsed
  with vmlab's lab model.

`strip_tutor_tables` is idempotent (a released lab.toml comes back unchanged), so a grader can hash
the student view of a lab.toml the same way on both sides.
"""

from __future__ import annotations

import ast
import re
import shutil
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmlab.errors import LabError, UsageError
from vmlab.spec.lab import TUTOR_TABLES

# top-level files and folders of the kit, copied as they are (docs/, src/ and labs/ are filtered)
KIT_FILES = ("pyproject.toml", "README.md", "Makefile", "Vagrantfile", ".gitignore")
KIT_DIRS = ("scripts", "vm-images", "schemas")
# the tutors' pages of docs/ (grading a class, the grading runner, one page per lab for tutors)
TUTOR_DOCS = {
    "grading.md": "tutors' page: grading a class",
    "runner.md": "tutors' page: the self-hosted grading runner",
    "labs": "tutors' pages: one per lab",
    "_draft_release.md": "tutors' draft: how a course hands the kit out",
}
LEFT_OUT_TOP = {
    "tests": "the test suite (it carries the model solutions)",
    "ci": "the tutors' grading CI templates",
    ".ci": "this repository's own CI",
}
SOLUTION_DIR = "solution"
JUNK_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".git", ".venv"}
JUNK_SUFFIXES = (".pyc", ".pyo", ".egg-info")

# a table header: [name] or [[name]], a dotted key of bare or quoted parts, then an optional comment
_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")


@dataclass(frozen=True)
class LeftOut:
    path: str
    why: str


@dataclass(frozen=True)
class KeptSolution:
    """A module a lab declares as a solution (or re-run hook) that ships anyway: shipped code imports it."""

    module: str
    declared_by: list[str]
    imported_by: list[str]


@dataclass
class Release:
    output: Path
    labs: list[str]
    written: list[str] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)
    kept_solutions: list[KeptSolution] = field(default_factory=list)
    removed_tables: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "labs": self.labs,
            "written": self.written,
            "left_out": [{"path": x.path, "why": x.why} for x in self.left_out],
            "kept_solutions": [
                {"module": k.module, "declared_by": k.declared_by, "imported_by": k.imported_by}
                for k in self.kept_solutions
            ],
            "removed_tables": self.removed_tables,
        }


# ---- lab.toml: the tutors' tables out, everything else (comments too) as written -------------------


def strip_tutor_tables(text: str, tables: Iterable[str] = TUTOR_TABLES) -> tuple[str, list[str]]:
    """`text` without the tables named (`[rerun]`, `[rerun.x]`, `[[bounds]]`, ...), and which went.

    Each table header owns the comment paragraph right above it, so a tutors' section's introduction
    goes with it and the next table keeps its own. The result is checked with tomllib to be the
    original minus exactly those keys; a file where line-wise removal would be wrong (a header-like
    line inside a multi-line string) is refused rather than released half-right.
    """
    names = set(tables)
    lines = text.splitlines(keepends=True)
    headers = [(i, m.group(2)) for i, ln in enumerate(lines) if (m := _HEADER.match(ln))]
    if not headers:
        return text, []
    starts: list[int] = []
    for i, _ in headers:
        j = i
        while j > 0 and not lines[j - 1].strip():
            j -= 1
        k = j
        while k > 0 and lines[k - 1].lstrip().startswith("#"):
            k -= 1
        starts.append(k if k < j else i)
    removed: list[str] = []
    keep = [True] * len(lines)
    for n, (_, name) in enumerate(headers):
        top = name.split(".", 1)[0].strip().strip("\"'")
        if top not in names:
            continue
        end = starts[n + 1] if n + 1 < len(headers) else len(lines)
        for x in range(starts[n], end):
            keep[x] = False
        if top not in removed:
            removed.append(top)
    if not removed:
        return text, []
    out = "".join(ln for ln, k in zip(lines, keep, strict=True) if k).rstrip() + "\n"
    before = tomllib.loads(text)
    try:
        after: dict[str, Any] | None = tomllib.loads(out)
    except tomllib.TOMLDecodeError:
        after = None
    if after != {k: v for k, v in before.items() if k not in names}:
        raise LabError(
            "removing the tutors' tables line by line would change other keys",
            hint="keep [rerun] and [[bounds]] out of multi-line strings",
        )
    return out, removed


# ---- which declared solutions the shipped code imports ----------------------------------------------


def _modules(src: Path) -> dict[str, Path]:
    """Every module under src/vmlab by dotted name (a package by its __init__.py)."""
    found: dict[str, Path] = {}
    for p in sorted((src / "vmlab").rglob("*.py")):
        if any(part in JUNK_DIRS for part in p.parts):
            continue
        parts = list(p.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = p
    return found


def _type_checking_only(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _walk_runtime(node: ast.AST) -> Iterator[ast.AST]:
    """Every node that can run, skipping the bodies of `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking_only(child):
            for other in child.orelse:
                yield other
                yield from _walk_runtime(other)
            continue
        yield child
        yield from _walk_runtime(child)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The vmlab modules `name` imports at run time (module level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: set[str] = set()
    for node in _walk_runtime(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known)
    return {m for m in out if m == "vmlab" or m.startswith("vmlab.")}


def _covers(solution: str, module: str) -> bool:
    return module == solution or module.startswith(solution + ".")


def split_solutions(src: Path, declared: dict[str, list[str]]) -> tuple[list[str], list[KeptSolution]]:
    """(solutions left out, solutions kept) for `declared` = {module: [labs declaring it]}.

    A declared solution stays when a module that ships imports it, to a fixed point: what a kept
    solution imports is shipped code too.
    """
    modules = _modules(src)
    known = set(modules)
    deps = {m: imports_of(m, p, known) for m, p in modules.items()}
    out = set(declared)
    kept: dict[str, set[str]] = {}
    changed = True
    while changed:
        changed = False
        shipped = [m for m in modules if not any(_covers(s, m) for s in out)]
        for s in sorted(out):
            importers = {m for m in shipped if any(_covers(s, d) for d in deps[m])}
            if importers:
                out.discard(s)
                kept[s] = importers
                changed = True
    return sorted(out), [
        KeptSolution(module=s, declared_by=sorted(declared[s]), imported_by=sorted(kept[s]))
        for s in sorted(kept)
    ]


def _solution_paths(src: Path, module: str) -> list[Path]:
    base = src.joinpath(*module.split("."))
    return [p for p in (base, base.with_suffix(".py")) if p.exists()]


# ---- the copy ---------------------------------------------------------------------------------------


def repo_root() -> Path:
    """The tutors' checkout this vmlab runs from: a release copies from it, never from site-packages."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "src" / "vmlab").is_dir():
        raise UsageError(
            "vmlab runs from an installed package, not from its repository",
            hint="run vmlab release from the tutors' checkout (pip install -e .)",
        )
    return root


def _junk(p: Path) -> bool:
    return p.name in JUNK_DIRS or p.name.endswith(JUNK_SUFFIXES)


def _files(top: Path, skip: set[Path]) -> Iterator[Path]:
    """Files under `top`, sorted, without caches, bytecode and the `skip` paths (resolved)."""
    for p in sorted(top.iterdir()):
        if _junk(p) or p.resolve() in skip:
            continue
        if p.is_dir() and not p.is_symlink():
            yield from _files(p, skip)
        elif p.is_file():
            yield p


class _Writer:
    def __init__(self, root: Path, out: Path, result: Release) -> None:
        self.root, self.out, self.result = root, out, result

    def copy(self, src: Path, rel: Path) -> None:
        dest = self.out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        self.result.written.append(rel.as_posix())

    def write(self, rel: Path, text: str) -> None:
        dest = self.out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
        self.result.written.append(rel.as_posix())

    def tree(self, top: Path, rel: Path, skip: Iterable[Path] = ()) -> None:
        for f in _files(top, {s.resolve() for s in [*skip, self.out]}):
            self.copy(f, rel / f.relative_to(top))

    def leave(self, path: Path | str, why: str) -> None:
        shown = path if isinstance(path, str) else path.relative_to(self.root).as_posix()
        self.result.left_out.append(LeftOut(shown, why))


def _empty_output(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} is not empty: a release is written into a new or empty folder")


def declared_solutions() -> dict[str, list[str]]:
    """{module: [where declared]} from every lab's `[rerun]`: its `solutions` (vmlab's answers) and the
    module of its `hook` (re-run material), read as TOML: a lab not released still declares them."""
    from vmlab.labs.catalog import lab_names, lab_path
    from vmlab.spec.lab import read_lab_toml

    found: dict[str, list[str]] = {}
    for name in lab_names():
        rerun = read_lab_toml(lab_path(name)).get("rerun")
        if not isinstance(rerun, dict):
            continue
        solutions = rerun.get("solutions", [])
        for s in solutions if isinstance(solutions, list) else []:
            if isinstance(s, str):
                found.setdefault(s, []).append(f"{name} [rerun] solutions")
        hook = rerun.get("hook")
        if isinstance(hook, str) and ":" in hook:
            found.setdefault(hook.partition(":")[0], []).append(f"{name} [rerun] hook")
    return found


def release(labs: list[str], output: Path) -> Release:
    """Write the student kit of `labs` into `output` (new or empty); see the module doc."""
    from vmlab.labs.catalog import lab_names, lab_path, load_lab
    from vmlab.spec.lab import parse_lab

    if not labs:
        raise UsageError("name at least one lab to release", hint=f"labs: {', '.join(lab_names())}")
    out = output.absolute()
    _empty_output(out)
    lab_dirs = {name: lab_path(name).parent for name in dict.fromkeys(labs)}
    for name in lab_dirs:
        load_lab(name)  # a lab that does not load is not released
    root = repo_root()
    src = root / "src"
    declared = declared_solutions()
    left_solutions, kept = split_solutions(src, declared)

    result = Release(output=out, labs=list(lab_dirs), kept_solutions=kept)
    out.mkdir(parents=True, exist_ok=True)
    w = _Writer(root, out, result)

    for name in KIT_FILES:
        if (root / name).is_file():
            w.copy(root / name, Path(name))
    for name in KIT_DIRS:
        if (root / name).is_dir():
            w.tree(root / name, Path(name))
    for name, why in LEFT_OUT_TOP.items():
        if (root / name).exists():
            w.leave(name + "/", why)

    docs = root / "docs"
    if docs.is_dir():
        tutors = [docs / n for n in TUTOR_DOCS if (docs / n).exists()]
        w.tree(docs, Path("docs"), skip=tutors)
        for p in tutors:
            w.leave(p.relative_to(root).as_posix() + ("/" if p.is_dir() else ""), TUTOR_DOCS[p.name])

    skip: list[Path] = []
    for s in left_solutions:
        for p in _solution_paths(src, s):
            skip.append(p)
            by = "; ".join(sorted(declared[s]))
            w.leave(p.relative_to(root).as_posix() + ("/" if p.is_dir() else ""), f"{s}: declared in {by}")
    w.tree(src / "vmlab", Path("src") / "vmlab", skip=skip)

    for name, lab_dir in lab_dirs.items():
        rel = Path("labs") / name
        solution_dirs = [p for p in lab_dir.rglob(SOLUTION_DIR) if p.is_dir()]
        for p in solution_dirs:
            w.leave(f"{rel.as_posix()}/{p.relative_to(lab_dir).as_posix()}/", "model solutions (tutors)")
        w.tree(lab_dir, rel, skip=[*solution_dirs, lab_dir / "lab.toml"])
        text, removed = strip_tutor_tables((lab_dir / "lab.toml").read_text(encoding="utf-8"))
        w.write(rel / "lab.toml", text)
        if removed:
            result.removed_tables[f"{rel.as_posix()}/lab.toml"] = removed
        lab = parse_lab(out / rel / "lab.toml")
        for input_name, decl in lab.inputs.items():
            if decl.default is not None and not (out / rel / decl.default).exists():
                raise LabError(
                    f"lab {name}: the default of input {input_name!r}, {decl.default}, is not in the kit",
                    hint="a student's default must be a skeleton, never under solution/",
                )
    for other in sorted(set(lab_names()) - set(lab_dirs)):
        w.leave(f"labs/{other}/", "not released")
    result.written.sort()
    return result
