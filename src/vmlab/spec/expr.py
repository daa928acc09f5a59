"""A small, safe expression language over report paths, for `expr` checks, `when` and derivations.

Parsed with Python's `ast` and walked by hand over a whitelist; nothing is ever `eval`ed. Grammar:

- numbers, strings ('kvm'), True, False, None;
- paths: bare when every segment is a Python identifier (`true.counts.runs`, `host.accel`), else in
  backticks (`` `programs.console-bytewise.counts.IO` ``, `` `{member}.S4` ``); the path syntax is
  vmlab.spec.paths'. A path used as a number stands for its summary median, like in other checks;
- `+ - * /`, unary `-`, comparisons `< <= == != >= >` (chains allowed), `and`, `or`, `not`;
- functions: `len min max mean median sum first last` over a series (`values` list, `series.NAME`) or an
  experiment's or measurement's samples, e.g. `median(python) / median(true) > 2`; `min`/`max` with
  several arguments compare numbers; `abs(x)`.

Failures are kept apart: a missing path or a wrong type in the report is the student's data
(PathMissing, the check fails); division by zero or a list used as a number is the lab author's
expression (ExprError, the check is `error`).
"""

from __future__ import annotations

import ast
import math
import operator
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from vmlab.report.model import Report
from vmlab.spec.paths import ParsedPath, PathMissing, parse_path, resolve_raw, series, summary_median


class ExprError(ValueError):
    """The expression itself cannot be evaluated (a grader fault, not the student's)."""


_BACKTICK = re.compile(r"`([^`]*)`")
_SLOT = "__vmlab_path_{}__"
_STRINGS = re.compile(r"'[^']*'|\"[^\"]*\"")
_DASHED = re.compile(r"[A-Za-z_]\w*-[A-Za-z_]")

_BIN: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_CMP: dict[type[ast.cmpop], tuple[str, Callable[[Any, Any], bool]]] = {
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.GtE: (">=", operator.ge),
    ast.Gt: (">", operator.gt),
}
_SERIES_FUNCS: dict[str, Callable[[list[float]], float]] = {
    "len": lambda xs: float(len(xs)),
    "min": min,
    "max": max,
    "mean": statistics.fmean,
    "median": statistics.median,
    "sum": math.fsum,
    "first": lambda xs: xs[0],
    "last": lambda xs: xs[-1],
}
FUNCTIONS = frozenset({*_SERIES_FUNCS, "abs"})


@dataclass(frozen=True)
class Expr:
    """A checked expression: the source text and the validated Python AST."""

    text: str
    tree: ast.expr
    paths: dict[str, ParsedPath] = field(default_factory=dict)

    @property
    def is_condition(self) -> bool:
        """True when the top is a comparison, and/or or not: what a check or `when` must be."""
        t = self.tree
        return isinstance(t, ast.Compare | ast.BoolOp) or (
            isinstance(t, ast.UnaryOp) and isinstance(t.op, ast.Not)
        )


@lru_cache(maxsize=512)
def compile_expr(text: str) -> Expr:
    """Parse and whitelist an expression; ValueError names what is not allowed."""
    paths: dict[str, ParsedPath] = {}

    def slot(m: re.Match[str]) -> str:
        name = _SLOT.format(len(paths))
        paths[name] = parse_path(m.group(1))
        return name

    source = _BACKTICK.sub(slot, text)
    if "`" in source:
        raise ValueError(f"expression {text!r}: unbalanced backtick")
    if _DASHED.search(_STRINGS.sub("''", source)):
        raise ValueError(
            f"expression {text!r}: a name with a dash; quote such a path in backticks, `a.b-c`"
            " (write a subtraction with spaces, a - b)"
        )
    if "{member}" in source:
        raise ValueError(f"expression {text!r}: write {{member}} inside a backtick path, `{{member}}.x`")
    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except SyntaxError as e:
        hint = " (quote paths with dashes or dots in backticks)" if "-" in text else ""
        raise ValueError(f"expression {text!r} does not parse: {e.msg}{hint}") from None
    _whitelist(tree, paths, text)
    return Expr(text, tree, paths)


def _whitelist(node: ast.expr, paths: dict[str, ParsedPath], text: str) -> None:
    """Accept only the grammar above; bare dotted names become paths."""

    def bad(what: str) -> ValueError:
        return ValueError(f"expression {text!r}: {what} is not allowed")

    match node:
        case ast.Constant(value=v):
            if not isinstance(v, int | float | str | bool | type(None)):
                raise bad(f"the constant {v!r}")
        case ast.Name() | ast.Attribute():
            dotted = _dotted(node)
            if dotted is None:
                raise bad(f"'{ast.unparse(node)}'")
            if dotted not in paths:
                paths[dotted] = parse_path(dotted)
        case ast.BinOp(left=left, op=op, right=right):
            if type(op) not in _BIN:
                raise bad(f"the operator in '{ast.unparse(node)}'")
            _whitelist(left, paths, text)
            _whitelist(right, paths, text)
        case ast.UnaryOp(op=op, operand=x):
            if not isinstance(op, ast.USub | ast.UAdd | ast.Not):
                raise bad(f"the operator in '{ast.unparse(node)}'")
            _whitelist(x, paths, text)
        case ast.BoolOp(values=items):
            for item in items:
                _whitelist(item, paths, text)
        case ast.Compare(left=left, ops=ops, comparators=comps):
            if any(type(op) not in _CMP for op in ops):
                raise bad(f"the comparison in '{ast.unparse(node)}'")
            for x in (left, *comps):
                _whitelist(x, paths, text)
        case ast.Call(func=ast.Name(id=fn), args=args, keywords=[]):
            if fn not in FUNCTIONS:
                raise bad(f"the function {fn}() (known: {', '.join(sorted(FUNCTIONS))})")
            if not args or (fn not in ("min", "max") and len(args) != 1):
                raise bad(f"{fn}() with {len(args)} arguments")
            for a in args:
                _whitelist(a, paths, text)
        case _:
            raise bad(f"'{ast.unparse(node)}'")


def _dotted(node: ast.expr) -> str | None:
    """`a.b.c` as text, or the slot name of a backtick path; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None or base.startswith("__vmlab_path_") else f"{base}.{node.attr}"
    return None


@dataclass
class Evaluation:
    """One evaluation: the report, the group member, and each path's value as it was read."""

    report: Report
    member: str | None = None
    missing_is_none: bool = False
    seen: dict[str, Any] = field(default_factory=dict)

    def path(self, expr: Expr, key: str) -> ParsedPath:
        p = expr.paths[key]
        if p.has_member:
            if self.member is None:
                raise ExprError(f"{p} uses {{member}} outside a group check")
            p = p.bind(self.member)
        return p

    def raw(self, expr: Expr, key: str) -> Any:
        p = self.path(expr, key)
        try:
            return resolve_raw(self.report, p)
        except PathMissing:
            if self.missing_is_none:
                return None
            raise


def evaluate(expr: Expr, ev: Evaluation) -> Any:
    return _eval(expr, expr.tree, ev)


def _eval(expr: Expr, node: ast.expr, ev: Evaluation) -> Any:
    match node:
        case ast.Constant(value=v):
            return v
        case ast.Name() | ast.Attribute():
            key = _dotted(node)
            assert key is not None  # whitelisted
            shown = str(ev.path(expr, key))
            value = summary_median(ev.raw(expr, key))
            if isinstance(value, list | dict) or hasattr(value, "model_fields"):
                raise ExprError(f"{shown} is not a number or text: use len(), min(), mean(), ... on it")
            ev.seen[shown] = value
            return value
        case ast.BinOp(left=left, op=op, right=right):
            a, b = _num(expr, left, ev), _num(expr, right, ev)
            if isinstance(op, ast.Div) and b == 0:
                raise ExprError(f"division by zero in '{ast.unparse(node)}'")
            return _BIN[type(op)](a, b)
        case ast.UnaryOp(op=ast.Not(), operand=x):
            return not _truth(_eval(expr, x, ev))
        case ast.UnaryOp(op=op, operand=x):
            v = _num(expr, x, ev)
            return -v if isinstance(op, ast.USub) else v
        case ast.BoolOp(op=bop, values=items):
            if isinstance(bop, ast.And):
                return all(_truth(_eval(expr, item, ev)) for item in items)
            return any(_truth(_eval(expr, item, ev)) for item in items)
        case ast.Compare(left=left, ops=ops, comparators=comps):
            a = _eval(expr, left, ev)
            for cop, c in zip(ops, comps, strict=True):
                b = _eval(expr, c, ev)
                if not _compare(type(cop), a, b, node):
                    return False
                a = b
            return True
        case ast.Call(func=ast.Name(id=fn), args=args):
            return _call(expr, fn, args, ev)
    raise ExprError(f"cannot evaluate '{ast.unparse(node)}'")  # unreachable after the whitelist


def _call(expr: Expr, fn: str, args: Sequence[ast.expr], ev: Evaluation) -> float | int:
    if fn == "abs":
        return abs(_num(expr, args[0], ev))
    if fn in ("min", "max") and len(args) > 1:
        nums = [_num(expr, a, ev) for a in args]
        return min(nums) if fn == "min" else max(nums)
    arg = args[0]
    key = _dotted(arg) if isinstance(arg, ast.Name | ast.Attribute) else None
    if key is None:
        raise ExprError(f"{fn}() takes a path to a series or samples, not '{ast.unparse(arg)}'")
    shown = str(ev.path(expr, key))
    raw = ev.raw(expr, key)
    xs = list(raw) if fn == "len" and isinstance(raw, dict) else series(raw, shown)
    if not xs and fn != "len":
        raise PathMissing(f"{shown} has no samples")
    value = len(xs) if fn == "len" else _SERIES_FUNCS[fn](xs)
    ev.seen[f"{fn}({shown})"] = value
    return value


def _num(expr: Expr, node: ast.expr, ev: Evaluation) -> float:
    v = _eval(expr, node, ev)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise PathMissing(f"'{ast.unparse(node)}' is {type(v).__name__}, not a number")
    return float(v)


def _truth(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ExprError(f"{v!r} is not true or false; compare it with something")
    return v


def _compare(op: type[ast.cmpop], a: Any, b: Any, node: ast.expr) -> bool:
    symbol, fn = _CMP[op]
    if symbol in ("==", "!="):
        same = (a is b) if isinstance(a, bool) or isinstance(b, bool) else a == b
        return bool(same) if symbol == "==" else not same
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))
    if not numbers and not (isinstance(a, str) and isinstance(b, str)):
        raise PathMissing(f"cannot order {a!r} and {b!r} in '{ast.unparse(node)}'")
    return bool(fn(a, b))
