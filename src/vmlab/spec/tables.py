"""lab.toml's tables that stand on their own: a tool the lab runs (`[tools.NAME]`), the tutors' re-run
(`[rerun]`) and physical bounds on measured values (`[[bounds]]`); the base every table model shares."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    """A lab.toml table: an unknown key is an error (a typo never passes silently)."""

    model_config = ConfigDict(extra="forbid")


SPEC = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"  # module:function
NAME = r"^[a-z][a-z0-9_-]*$"


TOOL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"


class Tool(Strict):
    """`[tools.NAME]`: a program the lab runs, declared once for `vmlab doctor` (one row per tool),
    a step's `requires = ["NAME"]` (its fix names `package`) and the report (its version, read by
    running `version` and taking `pattern`'s first group; `version = []`: only its presence)."""

    program: str | None = Field(None, pattern=TOOL_NAME)  # None: the table's name
    package: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9.+-]*( [a-z0-9][a-z0-9.+-]*)*$")
    version: list[str] | None = None  # None: [program, "--version"]
    pattern: str | None = None  # None: the first version-looking number (vmlab.host.tools.NUMBER)
    note: str | None = Field(None, pattern=SPEC)
    description: str = ""

    @model_validator(mode="after")
    def _one_group(self) -> Tool:
        if self.pattern is None:
            return self
        try:
            groups = re.compile(self.pattern).groups
        except re.error as e:
            raise ValueError(f"pattern {self.pattern!r} is no regular expression: {e}") from None
        if groups < 1:
            raise ValueError(f"pattern {self.pattern!r} needs a group: the version is its first")
        return self


class Rerun(Strict):
    """How tutors re-run a student's submitted code on hidden inputs (`vmlab grade --rerun`).

    `hook` ("module:function") derives the hidden inputs from the tutor's secret and the student id, runs
    the recorded `inputs` in a container with these limits and returns check results against an oracle.
    Timings are compared as ratios within `tolerance` (a factor) and reported, never scored to zero.
    `task` is the task whose claims the re-run tests (a report passing it whose code then fails is flagged).
    `modules` are what runs inside the container (`python -m ...`): their imports decide what the image
    holds. `solutions` name vmlab's own answers to the lab (a module or a package, with everything under
    it): the image leaves their files out and the hook refuses a student's import of them (a failed
    `rerun:uses-reference`), so the re-run grades the student's code, never vmlab's.

    `where = "host"`: a measurement lab, whose steps run vmlab's own runners; the hook re-measures them
    on the runner itself (vmlab.grade.remeasure) rather than in the container, and `inputs` (the
    student files those steps read) are optional. `calibrate` ("module:function") measures the runner's
    baseline for the lab's timed figures (`vmlab grade calibrate`).
    """

    hook: str = Field(pattern=SPEC)
    inputs: list[str] = Field(default_factory=list)
    modules: list[Annotated[str, Field(pattern=r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")]] = Field(
        default_factory=list
    )
    solutions: list[Annotated[str, Field(pattern=r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")]] = Field(
        default_factory=list
    )
    timeout_s: float = Field(120.0, gt=0)
    cpus: float = Field(1.0, gt=0)
    memory_mb: int = Field(512, ge=64)
    tolerance: float = Field(3.0, ge=1.0)
    kvm: bool = False
    task: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    where: Literal["container", "host"] = "container"
    calibrate: str | None = Field(None, pattern=SPEC)

    @model_validator(mode="after")
    def _entry_is_no_solution(self) -> Rerun:
        for m in self.modules:
            hit = next((s for s in self.solutions if m == s or m.startswith(s + ".")), None)
            if hit is not None:
                raise ValueError(f"module {m!r} runs in the container but is solution material ({hit!r})")
        return self


class Bound(Strict):
    """A physical limit on measured values: a hand-in outside it is flagged, never silently graded.

    `path` names a measurement (every sample and the summary are tested) or a single number;
    `each` expands `{member}` as in checks.
    """

    path: str
    each: list[str] = Field(default_factory=list)
    lo: float | None = None
    hi: float | None = None
    description: str = ""

    @model_validator(mode="after")
    def _some_limit(self) -> Bound:
        if self.lo is None and self.hi is None:
            raise ValueError(f"bound on {self.path!r} needs lo, hi or both")
        return self
