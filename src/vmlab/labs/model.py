"""lab.toml, validated. A malformed file names the file, the key and the problem.

Layout of a lab.toml:

    [lab]
    name = "warmup"
    title = "Process start-up"

    [[tasks]]
    id = "t1"
    title = "Start a process"
    experiments = ["true", "python"]

    [experiments.true]                       # one step; its runner may produce several experiments
    runner = "vmlab.experiments.process:startup"
    params = { argv = ["/bin/true"], runs = 20 }

    [[checks]]
    id = "python-slower"
    kind = "ratio"                           # exact | range | ratio | regex | present | order
    num = "python"                           # dotted paths into report.experiments
    den = "true"
    lo = 2.0
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vmlab.errors import LabError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabMeta(_Strict):
    name: str
    title: str
    description: str = ""


class Task(_Strict):
    id: str
    title: str
    experiments: list[str] = Field(default_factory=list)
    description: str = ""


class Step(_Strict):
    runner: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""


class _CheckBase(_Strict):
    id: str
    task: str | None = None
    description: str = ""
    required: bool = True
    # true when the verdict rests on wall-clock figures: graded like any other, but vmlab's own test
    # suite asserts only that such a check was computed, never its verdict (timing is noisy, counts are not)
    timing: bool = False


class ExactCheck(_CheckBase):
    kind: Literal["exact"]
    path: str
    value: int | float | str | bool


class RangeCheck(_CheckBase):
    kind: Literal["range"]
    path: str
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
    num: str
    den: str
    lo: float | None = None
    hi: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RatioCheck:
        if self.lo is None and self.hi is None:
            raise ValueError("a ratio check needs lo, hi or both")
        return self


class RegexCheck(_CheckBase):
    kind: Literal["regex"]
    path: str
    pattern: str


class PresentCheck(_CheckBase):
    kind: Literal["present"]
    path: str


class OrderCheck(_CheckBase):
    """The values at `paths` never decrease (strict=true: always increase)."""

    kind: Literal["order"]
    paths: list[str] = Field(min_length=2)
    strict: bool = False


Check = Annotated[
    ExactCheck | RangeCheck | RatioCheck | RegexCheck | PresentCheck | OrderCheck,
    Field(discriminator="kind"),
]


class Lab(_Strict):
    lab: LabMeta
    tasks: list[Task] = Field(default_factory=list)
    experiments: dict[str, Step] = Field(default_factory=dict)
    checks: list[Check] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Lab:
        for task in self.tasks:
            for exp in task.experiments:
                if exp not in self.experiments:
                    raise ValueError(f"task {task.id!r} names experiment {exp!r}, which is not declared")
        task_ids = {t.id for t in self.tasks}
        seen: set[str] = set()
        for check in self.checks:
            if check.id in seen:
                raise ValueError(f"check id {check.id!r} appears twice")
            seen.add(check.id)
            if check.task is not None and check.task not in task_ids:
                raise ValueError(f"check {check.id!r} names task {check.task!r}, which is not declared")
        return self


def parse_lab(path: Path) -> Lab:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(f"{path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise LabError(f"{path} is not valid TOML: {e}") from None
    try:
        return Lab.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        key = _toml_key(first["loc"], data)
        raise LabError(
            f"{path}: key {key}: {first['msg']}", hint="see labs/README.md for the lab.toml format"
        ) from None


def _toml_key(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """Render a pydantic location as a TOML-ish key, naming array items by their id."""
    parts: list[str] = []
    node: Any = data
    for p in loc:
        if isinstance(p, int) and isinstance(node, list) and 0 <= p < len(node):
            item = node[p]
            ident = item.get("id") if isinstance(item, dict) else None
            parts[-1] = f"{parts[-1]}[{p}{' id=' + repr(ident) if ident else ''}]"
            node = item
        elif isinstance(p, str) and p in ("exact", "range", "ratio", "regex", "present", "order") and parts:
            continue  # pydantic's discriminator tag, not a key in the file
        else:
            parts.append(str(p))
            node = node.get(p) if isinstance(node, dict) else None
    return ".".join(parts) or "<top>"
