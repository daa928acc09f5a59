"""vmlab's import graph has no circle and points one way: down the layers of docs/lab-contract.md
("Layers").

Every import counts, at module level, inside a function or under TYPE_CHECKING: a lazy import is a
dependency all the same (it only moves the cost to the first call). An import from a package to
another one is allowed only when the other sits in a lower layer; two packages of one layer never
import each other (the run pipeline, vmlab.labs, and the grader, vmlab.check, share vmlab.spec and
nothing else).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import vmlab

SRC = Path(vmlab.__file__).parent

# Lowest first; a name is a module or a package (with everything under it). docs/lab-contract.md.
LAYERS: list[tuple[str, ...]] = [
    ("vmlab", "vmlab.errors"),  # the version string and the errors every layer raises
    ("vmlab.alarm", "vmlab.paths", "vmlab.runtime_registry"),  # leaves: timers, folders, runtime names
    ("vmlab.report",),  # the report's models: the JSON schema every report follows
    ("vmlab.spec",),  # the lab contract: lab.toml's models, paths, expressions, answers, digests
    ("vmlab.guest",),  # reaching into a guest: console, ssh, readiness
    ("vmlab.images", "vmlab.host"),  # images and their cache; facts and probes of this host
    ("vmlab.backends",),  # the runtimes behind one protocol
    ("vmlab.labs", "vmlab.check"),  # the run pipeline; grading one report
    ("vmlab.grade", "vmlab.release", "vmlab.cli.output"),  # a class; a kit; the CLI's printing helpers
    # the labs' own packages: found through lab.toml, never imported by the shared layers below
    (
        "vmlab.isa",
        "vmlab.kvmapi",
        "vmlab.procvm",
        "vmlab.hllvm",
        "vmlab.osvirt",
        "vmlab.systemvm",
        "vmlab.warmup",
    ),
    ("vmlab.cli",),  # the commands, on top
]

# Edges that other work in flight removes (issue 20): listed here so this test guards everything
# else today. The lead empties this set once those branches are merged; it must end up empty.
KNOWN_PENDING: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = ["vmlab", *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _target(name: str) -> str | None:
    """The module an imported name lives in: the longest prefix that is a module of vmlab."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported module of vmlab, line) for every import statement anywhere in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            target = _target(name) if name == "vmlab" or name.startswith("vmlab.") else None
            if target is not None and target != module:
                yield target, node.lineno


EDGES: dict[tuple[str, str], int] = {
    (m, t): line for m, path in MODULES.items() for t, line in _imports(m, path)
}


def _unit(module: str) -> tuple[int, str]:
    """The layer a module sits in, and the name of the layer entry holding it (its package)."""
    best: tuple[int, str] | None = None
    for i, layer in enumerate(LAYERS):
        for name in layer:
            inside = module == name or (name != "vmlab" and module.startswith(name + "."))
            if inside and (best is None or len(name) > len(best[1])):
                best = (i, name)
    assert best is not None, f"{module} is in no layer: add its package to LAYERS (and to the docs)"
    return best


def _circles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    graph: dict[str, list[str]] = {m: [] for m in MODULES}
    for a, b in sorted(edges):
        graph[a].append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            children = graph[node]
            if i < len(children):
                work.append((node, i + 1))
                child = children[i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def test_the_walk_sees_lazy_imports_and_the_layers_cover_every_module() -> None:
    # a function-level import (labs.execute asks host.requirements only when a step runs)
    assert ("vmlab.labs.execute", "vmlab.host.requirements") in EDGES
    # `from vmlab.spec import digest`-style and relative imports resolve to the module itself
    assert _target("vmlab.spec.digest.sha256_file") == "vmlab.spec.digest"
    for module in MODULES:
        _unit(module)


def test_the_finder_of_circles_finds_one() -> None:
    """The check itself can fail: a planted circle of three is reported."""
    a, b, c = "vmlab.errors", "vmlab.paths", "vmlab.alarm"
    assert _circles({(a, b), (b, c), (c, a), (c, "vmlab.report")}) == [sorted([a, b, c])]


def test_the_layer_rule_finds_an_upward_and_a_sideways_import() -> None:
    """The check itself can fail: spec importing the pipeline, and check importing labs, are reported;
    a module importing within its own package, or below, is not."""
    planted = {
        ("vmlab.spec.lab", "vmlab.labs.catalog"): 1,
        ("vmlab.check.grader", "vmlab.labs.step"): 2,
        ("vmlab.labs.plan", "vmlab.labs.catalog"): 3,
        ("vmlab.labs.plan", "vmlab.spec.lab"): 4,
    }
    found = _upward(planted)
    assert [f.split(" imports ")[1] for f in found] == [
        "vmlab.labs.step (the same layer)",
        "vmlab.labs.catalog (layer 7 above its 3)",
    ]


def test_no_import_circle() -> None:
    circles = _circles(set(EDGES) - KNOWN_PENDING)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def _upward(edges: dict[tuple[str, str], int]) -> list[str]:
    """Every import of another package that is not in a lower layer, as `file:line imports X (why)`."""
    found = []
    for (a, b), line in sorted(edges.items()):
        (la, ua), (lb, ub) = _unit(a), _unit(b)
        if ua != ub and la <= lb and (a, b) not in KNOWN_PENDING:
            where = "the same layer" if la == lb else f"layer {lb} above its {la}"
            found.append(f"{MODULES[a].relative_to(SRC.parent)}:{line} imports {b} ({where})")
    return found


def test_imports_point_down_the_layers() -> None:
    upward = _upward(EDGES)
    assert not upward, "\n".join(upward)


def test_the_pending_edges_still_exist() -> None:
    """An edge listed as pending that is gone must leave the set (so the set only shrinks)."""
    assert not KNOWN_PENDING - set(EDGES), f"no longer imported: {sorted(KNOWN_PENDING - set(EDGES))}"
