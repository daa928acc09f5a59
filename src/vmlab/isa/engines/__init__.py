"""The engine registry: name → module, imported only when an engine is asked for.

Every engine module has one entry point, `run(code: bytes, a: int, l: int) -> Result`, and must give
the same final A, L and executed-instruction count as the reference interpreter. A student's engine
(`--engine-module FILE`) implements the same function; it may return a Result or a tuple (a, l, executed).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vmlab.errors import UsageError
from vmlab.isa.machine import Result

Engine = Callable[[bytes, int, int], Any]

ENGINES: dict[str, str] = {
    "switch": "vmlab.isa.engines.switch",
    "table": "vmlab.isa.engines.table",
    "predecoded": "vmlab.isa.engines.predecoded",
    "super": "vmlab.isa.engines.superinst",
    "bt-block": "vmlab.isa.engines.bt_block",
    "bt-pretranslate": "vmlab.isa.engines.bt_pretranslate",
    "bt-staged": "vmlab.isa.engines.bt_staged",
    "bt-chain": "vmlab.isa.engines.bt_chain",
    "bt-superblock": "vmlab.isa.engines.bt_superblock",
    "x86": "vmlab.isa.engines.x86",
}
INTERPRETERS = ("switch", "table", "predecoded", "super")
TRANSLATORS = ("bt-block", "bt-pretranslate", "bt-staged", "bt-chain", "bt-superblock")


def engine_names() -> list[str]:
    return list(ENGINES)


def parse_engines(text: str) -> list[str]:
    """'switch,bt-*' → the engines, in registry order; 'all' is every engine."""
    import fnmatch

    wanted = [w.strip() for w in text.split(",") if w.strip()]
    if not wanted:
        raise UsageError(
            "no engine named", hint=f"choose from {', '.join(ENGINES)} (wildcards like bt-* work)"
        )
    out: list[str] = []
    for w in wanted:
        hits = list(ENGINES) if w == "all" else [n for n in ENGINES if fnmatch.fnmatchcase(n, w)]
        if not hits:
            raise UsageError(f"unknown engine {w!r}", hint=f"choose from {', '.join(ENGINES)}")
        out += [h for h in hits if h not in out]
    return [n for n in ENGINES if n in out]


def get_engine(name: str) -> Engine:
    module = ENGINES.get(name)
    if module is None:
        raise UsageError(f"unknown engine {name!r}", hint=f"choose from {', '.join(ENGINES)}")
    fn: Engine = importlib.import_module(module).run
    return fn


def load_engine_file(path: Path) -> Engine:
    """A student's engine: a Python file defining run(code, a, l)."""
    if not path.is_file():
        raise UsageError(f"engine module {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"vmlab_student_engine_{abs(hash(str(path)))}", path)
    if spec is None or spec.loader is None:
        raise UsageError(
            f"engine module {path} is not a Python file", hint="pass a .py file defining run(code, a, l)"
        )
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise UsageError(f"engine module {path} line {e.lineno}: {e.msg}") from None
    except Exception as e:
        raise UsageError(f"engine module {path} failed to import: {type(e).__name__}: {e}") from None
    fn = getattr(module, "run", None)
    if not callable(fn):
        raise UsageError(
            f"engine module {path} defines no function run(code, a, l)",
            hint="start from labs/isa-emulation/skeleton/engine.py",
        )
    engine: Engine = fn
    return engine


def as_result(value: Any, source: str) -> Result:
    """Accept what a student's run() may return: a Result, or a tuple (a, l, executed)."""
    if isinstance(value, Result):
        return value
    if hasattr(value, "a") and hasattr(value, "l") and hasattr(value, "executed"):
        return Result(
            a=int(value.a),
            l=int(value.l),
            executed=int(value.executed),
            stats=dict(getattr(value, "stats", {}) or {}),
        )
    if isinstance(value, tuple | list) and len(value) == 3 and all(isinstance(x, int) for x in value):
        return Result(a=value[0], l=value[1], executed=value[2])
    raise UsageError(f"{source}: run() returned {type(value).__name__}, expected a tuple (a, l, executed)")
