"""Check definitions as lab.toml declares them: a strict union keyed by `kind`, validated at load.

Everything a lab author can get wrong is caught when lab.toml is read, naming the key: a regex that does
not compile, an expression that does not parse, a malformed path, negative points, a bad `when`.

Kinds (paths: see vmlab.spec.paths; expressions: see vmlab.spec.expr):

    exact    path, value               the value equals (True is never 1)
    range    path, lo and/or hi        lo <= value <= hi
    ratio    num, den, lo and/or hi    num / den in the band (a zero den fails)
    regex    path, pattern             re.search(pattern, text)
    present  path                      the path exists and is not empty
    order    paths, strict             the values never decrease (strict: always increase)
    compare  left, op, right,          left <op> right, op among < <= == != >= >; with tolerance,
             rel_tol, abs_tol          "close" means math.isclose(left, right, rel_tol, abs_tol):
                                       == is close, != not close, <= and >= also pass when close,
                                       < and > need to hold beyond the tolerance
    expr     expr                      a condition, e.g. "median(python) / median(true) > 2"

Every kind takes:

    id, task, description, required (default true), timing (wall-clock based, default false),
    points (default 1, >= 0),
    when = "host.accel == 'kvm'"   false: the check is skipped as not applicable,
    each = ["a", "b"]              one definition per member, `{member}` in paths and description;
                                   results are named `id[a]`, `id[b]`. A string names a group in the
                                   report (`each = "programs"`): its keys at grading time are the
                                   members. A member's task, when `task` is not given, is the task
                                   that runs the step behind the member's path.

A `[[derived]]` entry (path, expr, optional each) says a figure must equal what the expression gives
from other figures, e.g. `path = "true.counts.runs"`, `expr = "len(true.samples)"`; a mismatch fails
the report's integrity check.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from vmlab.spec.expr import compile_expr
from vmlab.spec.paths import MEMBER, check_path, parse_path

PathText = Annotated[str, AfterValidator(check_path)]
Op = Literal["<", "<=", "==", "!=", ">=", ">"]


def _condition(text: str) -> str:
    if not compile_expr(text).is_condition:
        raise ValueError(f"{text!r} is not a condition: compare something, e.g. \"host.accel == 'kvm'\"")
    return text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _CheckBase(_Strict):
    id: str = Field(min_length=1, pattern=r"^[^\[\]\s]+$")
    task: str | None = None
    description: str = ""
    required: bool = True
    # true when the verdict rests on wall-clock figures: `vmlab check --timing advisory` reports such a
    # check but keeps it out of the verdict and the score (timing is noisy, counts are not)
    timing: bool = False
    points: float = Field(1.0, ge=0)
    when: Annotated[str, AfterValidator(_condition)] | None = None
    each: list[Annotated[str, Field(min_length=1)]] | PathText | None = None

    def path_texts(self) -> list[str]:
        """Every path the check reads (for placeholder rules and mapping to steps)."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _members(self) -> _CheckBase:
        uses = any(parse_path(p).has_member for p in self.path_texts())
        if self.each is None and uses:
            raise ValueError(f"{MEMBER} is used but `each` is not given")
        if self.each is not None and not uses:
            raise ValueError(f"`each` is given but no path uses {MEMBER}")
        if isinstance(self.each, list) and len(set(self.each)) != len(self.each):
            raise ValueError("`each` lists a member twice")
        return self


class _OnePath(_CheckBase):
    path: PathText

    def path_texts(self) -> list[str]:
        return [self.path]


class ExactCheck(_OnePath):
    kind: Literal["exact"]
    value: int | float | str | bool


class RangeCheck(_OnePath):
    kind: Literal["range"]
    lo: float | None = None
    hi: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RangeCheck:
        if self.lo is None and self.hi is None:
            raise ValueError("a range check needs lo, hi or both")
        if self.lo is not None and self.hi is not None and self.lo > self.hi:
            raise ValueError(f"lo ({self.lo}) is greater than hi ({self.hi})")
        return self


class RatioCheck(_CheckBase):
    kind: Literal["ratio"]
    num: PathText
    den: PathText
    lo: float | None = None
    hi: float | None = None

    def path_texts(self) -> list[str]:
        return [self.num, self.den]

    @model_validator(mode="after")
    def _bounds(self) -> RatioCheck:
        if self.lo is None and self.hi is None:
            raise ValueError("a ratio check needs lo, hi or both")
        return self


class RegexCheck(_OnePath):
    kind: Literal["regex"]
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"pattern {v!r} is not a valid regular expression: {e}") from None
        return v


class PresentCheck(_OnePath):
    kind: Literal["present"]


class OrderCheck(_CheckBase):
    """The values at `paths` never decrease (strict=true: always increase)."""

    kind: Literal["order"]
    paths: list[PathText] = Field(min_length=2)
    strict: bool = False

    def path_texts(self) -> list[str]:
        return list(self.paths)


class CompareCheck(_CheckBase):
    kind: Literal["compare"]
    left: PathText
    op: Op
    right: PathText
    rel_tol: float = Field(0.0, ge=0)
    abs_tol: float = Field(0.0, ge=0)

    def path_texts(self) -> list[str]:
        return [self.left, self.right]


class ExprCheck(_CheckBase):
    kind: Literal["expr"]
    expr: Annotated[str, AfterValidator(_condition)]

    def path_texts(self) -> list[str]:
        return [str(p) for p in compile_expr(self.expr).paths.values()]


Check = Annotated[
    ExactCheck | RangeCheck | RatioCheck | RegexCheck | PresentCheck | OrderCheck | CompareCheck | ExprCheck,
    Field(discriminator="kind"),
]
CHECK_KINDS = ("exact", "range", "ratio", "regex", "present", "order", "compare", "expr")


def _numeric(text: str) -> str:
    if compile_expr(text).is_condition:
        raise ValueError(f"{text!r} is a condition; a derivation gives a number, e.g. len(true.samples)")
    return text


class Derivation(_Strict):
    """A figure the lab derives from others; `vmlab check` re-derives it (integrity)."""

    path: PathText
    expr: Annotated[str, AfterValidator(_numeric)]
    each: list[Annotated[str, Field(min_length=1)]] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _members(self) -> Derivation:
        uses = parse_path(self.path).has_member or any(
            p.has_member for p in compile_expr(self.expr).paths.values()
        )
        if (self.each is None) == uses:
            raise ValueError(f"use {MEMBER} in path or expr exactly when `each` is given")
        return self
