"""The engine registry: name → module, imported only when an engine is asked for.

Every engine module has one entry point, `run(code: bytes, a: int, l: int, **params) -> Result`, and
must give the same final A, L and executed-instruction count as the reference interpreter; its keyword
parameters (`hot`, `unroll`, `threshold`, ...) are settable from the CLI (`-p hot=8`). A student's
engine (`--engine-module FILE`, a task's skeleton) implements the same function and may return a
Result, a tuple (a, l, executed) or (a, l, executed, stats).

The registry lives outside `vmlab.isa.engines` on purpose: that package holds the reference engines,
which are the tasks' solutions. A course can ship the student kit without it; then the built-in engines
are reported as not installed and everything else (generator, reference interpreter, worker, grading)
keeps working.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vmlab.errors import NotAvailable, UsageError
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
    "bt-tiered": "vmlab.isa.engines.bt_tiered",
    "x86": "vmlab.isa.engines.x86",
}
INTERPRETERS = ("switch", "table", "predecoded", "super")
TRANSLATORS = ("bt-block", "bt-pretranslate", "bt-staged", "bt-chain", "bt-superblock", "bt-tiered")
NOT_INSTALLED_HINT = "the reference engines (vmlab.isa.engines) are a tutors' part; install the full vmlab"


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
    try:
        fn: Engine = importlib.import_module(module).run
    except ModuleNotFoundError as e:
        if e.name is None or not module.startswith(e.name):
            raise
        raise NotAvailable(f"engine {name!r} is not installed", hint=NOT_INSTALLED_HINT) from None
    return fn


def engine_params(fn: Engine) -> dict[str, Any]:
    """The keyword parameters an engine accepts beyond (code, a, l), with their defaults."""
    sig = inspect.signature(fn)
    return {
        p.name: p.default
        for p in list(sig.parameters.values())[3:]
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }


def parse_param(text: str) -> tuple[str, Any]:
    """'hot=8' → ('hot', 8): the value is read as JSON when it parses (numbers, true/false), else text."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"engine parameter {text!r}: expected KEY=VALUE", hint="for example -p hot=8")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def bind_params(fn: Engine, params: dict[str, Any], source: str) -> Engine:
    """`fn` with `params` applied; an unknown key or a value of the wrong type is one clear error."""
    if not params:
        return fn
    accepted = engine_params(fn)
    listed = ", ".join(f"{k}={v!r}" for k, v in accepted.items()) or "none"
    for key, value in params.items():
        if key not in accepted:
            raise UsageError(f"{source} has no parameter {key!r}", hint=f"its parameters: {listed}")
        default = accepted[key]
        if isinstance(default, bool) != isinstance(value, bool) or (
            isinstance(default, int | float) and not isinstance(value, int | float)
        ):
            raise UsageError(
                f"{source}: parameter {key}={value!r} should be like its default {default!r}",
                hint=f"its parameters: {listed}",
            )
    return functools.partial(fn, **params)


def load_engine_file(path: Path) -> Engine:
    """A student's engine: a Python file defining run(code, a, l); a path is taken from where you are."""
    if not path.is_file():
        hint = None
        if not path.is_absolute():
            from vmlab.errors import LabError
            from vmlab.labs.catalog import lab_dir

            try:
                found = lab_dir("isa-emulation") / path
            except LabError:  # a kit without the lab's folder: no guess to offer
                found = None
            if found is not None and found.is_file():
                hint = f"paths are taken from the current folder; did you mean {found}?"
        raise UsageError(f"engine module {path} does not exist", hint=hint)
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
            hint="start from a task's skeleton in labs/isa-emulation/skeleton/",
        )
    engine: Engine = fn
    return engine


def as_result(value: Any, source: str) -> Result:
    """Accept what a student's run() may return: a Result, a tuple (a, l, executed) or
    (a, l, executed, stats) where stats maps names such as blocks_translated to integers."""
    if isinstance(value, Result):
        return value
    if hasattr(value, "a") and hasattr(value, "l") and hasattr(value, "executed"):
        return Result(
            a=int(value.a),
            l=int(value.l),
            executed=int(value.executed),
            stats=dict(getattr(value, "stats", {}) or {}),
        )
    if (
        isinstance(value, tuple | list)
        and len(value) in (3, 4)
        and all(isinstance(x, int) for x in value[:3])
    ):
        stats = value[3] if len(value) == 4 else {}
        if not isinstance(stats, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in stats.items()
        ):
            raise UsageError(
                f"{source}: run()'s fourth value should map names to integers, got {stats!r:.80}"
            )
        return Result(a=value[0], l=value[1], executed=value[2], stats=dict(stats))
    raise UsageError(
        f"{source}: run() returned {type(value).__name__} {value!r:.60}, expected a tuple (a, l, executed)"
    )
