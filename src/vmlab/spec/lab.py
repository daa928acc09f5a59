"""lab.toml, validated. A malformed file names the file, the key and the problem.

Layout of a lab.toml (docs/lab-contract.md has the whole contract):

    [lab]
    name = "startup"
    title = "Process start-up"
    tools = ["gcc"]                          # tool versions recorded in the report
    views = { table = "pkg.views:table" }    # optional: summary table and plots of this lab
    cli = "pkg.cli:register"                 # optional: the lab's own command group

    [tools.gcc]                              # a tool the lab runs: doctor, requires, provenance
    package = "gcc"                          # the Debian package (the fix when it is missing)
    version = ["gcc", "-dumpfullversion"]    # optional: argv printing the version ([]: presence)
    pattern = '([0-9.]+)'                    # optional: its first group is the version
    # program = "gcc"                        # optional, default the table's name
    # note = "pkg.mod:function"              # optional: version -> one line when a release is unknown

    [inputs.engine]                          # a student input: --input engine=FILE
    kind = "file"
    default = "skeleton/engine.py"           # optional, relative to the lab folder

    [[tasks]]
    id = "t1"
    title = "Start a process"
    experiments = ["true", "python"]

    [experiments.true]                       # one step; its runner may produce several experiments
    runner = "startup_lab.steps:startup"
    params = { argv = ["/bin/true"], runs = 20 }
    requires = ["docker"]                    # unmet: the step is skipped with the reason
    timeout_s = 120

    [[checks]]
    id = "python-slower"
    kind = "ratio"                           # exact | range | ratio | regex | present | order
    num = "python"                           # dotted paths into report.experiments
    den = "true"
    lo = 2.0

    [variants]                               # per-student parameters (vmlab.spec.variants)
    term = "2027-spring"
    [variants.params.runs]                   # read by checks as `variant.runs`
    set = ["true.runs"]                      # the step parameters it fixes
    range = [16, 24]                         # or choices = [...]; optional step, format

    [inputs.answers]                         # a lab with questions takes the student's answers file
    kind = "file"

    [[questions]]                            # answered in the answers file, graded as `q:<id>`
    id = "python-vs-true"
    task = "t2"
    kind = "number"                          # number | choice | text
    prompt = "How many times slower does python -c pass start than /bin/true?"
    unit = "x"
    expr = "median(python) / median(true)"   # or path = "..." (the figure the answer predicts)
    rel_tol = 0.5                            # and/or abs_tol
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, model_validator

from vmlab.errors import LabError
from vmlab.spec.checks import Check, Derivation
from vmlab.spec.questions import ANSWERS_INPUT, Question
from vmlab.spec.tables import NAME as _NAME
from vmlab.spec.tables import SPEC as _SPEC
from vmlab.spec.tables import TOOL_NAME, Bound, Rerun, Tool
from vmlab.spec.tables import Strict as _Strict


class LabViews(_Strict):
    """Where the lab's own renderings live: table(report) -> rich renderable, plots(report, dir) -> paths."""

    table: str | None = Field(None, pattern=_SPEC)
    plots: str | None = Field(None, pattern=_SPEC)


class LabMeta(_Strict):
    name: str = Field(pattern=_NAME)
    title: str
    description: str = ""
    tools: list[Annotated[str, Field(pattern=TOOL_NAME)]] = Field(default_factory=list)
    views: LabViews = Field(default_factory=lambda: LabViews(table=None, plots=None))
    cli: str | None = Field(None, pattern=_SPEC)


class Input(_Strict):
    """A file or folder the student hands in; recorded by relative name and sha256, copied to artifacts."""

    kind: Literal["file", "dir"]
    default: str | None = None
    description: str = ""
    suffixes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _relative_default(self) -> Input:
        if self.default is not None and (self.default.startswith("/") or ".." in Path(self.default).parts):
            raise ValueError(f"default {self.default!r} must be a path inside the lab folder")
        return self


class Task(_Strict):
    id: str
    title: str
    experiments: list[str] = Field(default_factory=list)
    description: str = ""


class Step(_Strict):
    runner: str = Field(pattern=_SPEC)
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    # a probe's name (kvm, libvirt, docker, root, java, ...) or a program that must be installed
    requires: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")]] = Field(
        default_factory=list
    )
    inputs: list[str] = Field(default_factory=list)
    timeout_s: float | None = Field(None, gt=0)


class VariantParam(_Strict):
    """One workload parameter drawn per student (vmlab.spec.variants): an integer from `range` (both
    ends included, multiples of `step` from lo) or one of `choices`; `format` turns it into text
    ("hello from guest {value}"). `set` names the step parameters it fixes, as "STEP.KEY"."""

    set: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z_]\w*$")]] = Field(min_length=1)
    range: tuple[int, int] | None = None
    step: int = Field(1, ge=1)
    choices: list[int | float | str] | None = Field(None, min_length=2)
    format: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> VariantParam:
        if (self.range is None) == (self.choices is None):
            raise ValueError("a variant parameter needs exactly one of range and choices")
        if self.range is not None and self.range[0] >= self.range[1]:
            raise ValueError(f"range {list(self.range)}: lo must be below hi")
        if self.format is not None:
            try:
                self.format.format(value=0)
            except (KeyError, IndexError, ValueError) as e:
                raise ValueError(f"format {self.format!r}: only {{value}} may be used ({e})") from None
        return self


class Variants(_Strict):
    """`[variants]`: the term (the tutor's; VMLAB_TERM overrides it) and the parameters by name; a
    check reads a parameter as `variant.NAME`."""

    term: str = ""
    params: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], VariantParam] = Field(min_length=1)


class Lab(_Strict):
    lab: LabMeta
    tools: dict[Annotated[str, Field(pattern=TOOL_NAME)], Tool] = Field(default_factory=dict)
    inputs: dict[str, Input] = Field(default_factory=dict)
    tasks: list[Task] = Field(default_factory=list)
    experiments: dict[str, Step] = Field(default_factory=dict)
    checks: list[Check] = Field(default_factory=list)
    derived: list[Derivation] = Field(default_factory=list)
    rerun: Rerun | None = None
    bounds: list[Bound] = Field(default_factory=list)
    questions: list[Question] = Field(default_factory=list)
    variants: Variants | None = None
    # set by parse_lab, never by lab.toml: where the lab's folder is and the digest of its rules
    _folder: Path | None = PrivateAttr(None)
    _sha256: str | None = PrivateAttr(None)

    @property
    def folder(self) -> Path:
        """The folder holding this lab's lab.toml (its skeleton, solution and data files)."""
        if self._folder is None:
            raise LabError(f"lab {self.lab.name!r} was not read from a lab.toml, so it has no folder")
        return self._folder

    @property
    def sha256(self) -> str:
        """The digest of the lab's rules that every report records (rules_sha256)."""
        if self._sha256 is None:
            raise LabError(f"lab {self.lab.name!r} was not read from a lab.toml, so it has no digest")
        return self._sha256

    @model_validator(mode="after")
    def _references(self) -> Lab:
        for task in self.tasks:
            for exp in task.experiments:
                if exp not in self.experiments:
                    raise ValueError(f"task {task.id!r} names experiment {exp!r}, which is not declared")
        for step_id, step in self.experiments.items():
            for name in step.inputs:
                if name not in self.inputs:
                    raise ValueError(f"step {step_id!r} reads input {name!r}, which is not declared")
        for name in self.rerun.inputs if self.rerun else []:
            if name not in self.inputs:
                raise ValueError(f"[rerun] re-runs input {name!r}, which is not declared")
        if self.rerun and self.rerun.task is not None and self.rerun.task not in {t.id for t in self.tasks}:
            raise ValueError(f"[rerun] names task {self.rerun.task!r}, which is not declared")
        task_ids = {t.id for t in self.tasks}
        seen: set[str] = set()
        for check in self.checks:
            if check.id in seen:
                raise ValueError(f"check id {check.id!r} appears twice")
            seen.add(check.id)
            if check.task is not None and check.task not in task_ids:
                raise ValueError(f"check {check.id!r} names task {check.task!r}, which is not declared")
        asked: set[str] = set()
        for q in self.questions:
            if q.id in asked:
                raise ValueError(f"question id {q.id!r} appears twice")
            asked.add(q.id)
            if q.task not in task_ids:
                raise ValueError(f"question {q.id!r} names task {q.task!r}, which is not declared")
        fixed: set[str] = set()
        for name, spec in (self.variants.params if self.variants else {}).items():
            for target in spec.set:
                if target.partition(".")[0] not in self.experiments:
                    raise ValueError(f"variant {name!r} sets {target!r}, whose step is not declared")
                if target in fixed:
                    raise ValueError(f"variant {name!r} sets {target!r}, which another variant sets too")
                fixed.add(target)
        answers = self.inputs.get(ANSWERS_INPUT)
        if self.questions and (answers is None or answers.kind != "file"):
            raise ValueError(
                f'a lab with [[questions]] declares [inputs.{ANSWERS_INPUT}] with kind = "file" '
                "(the student's answers)"
            )
        return self


def read_lab_toml(path: Path) -> dict[str, Any]:
    """The TOML of a lab.toml, or one LabError naming the file and the fault (shared with the CLI's
    start-up, so both say the same line about a broken lab)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabError(f"{path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise LabError(f"{path} is not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise LabError(f"{path} is not valid TOML: not UTF-8 text (byte {e.start})") from None
    except RecursionError:  # tomllib recurses into nested arrays and tables
        raise LabError(f"{path} is not valid TOML: it nests too deep") from None
    except OSError as e:
        raise LabError(f"cannot read {path}: {e.strerror}") from None


def parse_lab(path: Path) -> Lab:
    """The lab.toml at `path`, validated, carrying its folder and the digest of its rules: read once."""
    data = read_lab_toml(path)
    try:
        lab = Lab.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        key = _toml_key(first["loc"], data)
        raise LabError(
            f"{path}: key {key}: {first['msg']}", hint="see docs/lab-contract.md for the lab.toml format"
        ) from None
    lab._folder, lab._sha256 = path.parent, rules_sha256(data)
    return lab


# The tables of lab.toml that are the tutors' alone: `vmlab release` leaves them out of a student kit.
TUTOR_TABLES = ("rerun", "bounds")
SOLUTION = "solution"  # the tutors' folder of a lab: left out of a student's kit (vmlab release)


def rules_sha256(data: dict[str, Any]) -> str:
    """The hash of a lab's rules, recorded with every report: sha256 of lab.toml's parsed content as
    canonical JSON, the tutors' tables left out, so a student kit (vmlab.release, which leaves them
    out) and the tutors' copy agree, and a comment or a layout change is no other rule."""
    rules = {k: v for k, v in data.items() if k not in TUTOR_TABLES}
    canonical = json.dumps(rules, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def answer_key_path(lab: Lab) -> Path:
    """Where the tutors' answer key of a lab's choice questions lives: labs/<lab>/solution/answers.toml.

    Never in lab.toml, so a kit without `solution/` holds no answers (its choice questions are `error`).
    """
    return lab.folder / SOLUTION / "answers.toml"


def _toml_key(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """Render a pydantic location as a TOML-ish key, naming array items by their id."""
    parts: list[str] = []
    node: Any = data
    for i, p in enumerate(loc):
        if isinstance(p, int) and isinstance(node, list) and 0 <= p < len(node):
            item = node[p]
            ident = item.get("id") if isinstance(item, dict) else None
            parts[-1] = f"{parts[-1]}[{p}{' id=' + repr(ident) if ident else ''}]"
            node = item
        elif (
            isinstance(p, str)
            and i > 0
            and isinstance(loc[i - 1], int)
            and isinstance(node, dict)
            and node.get("kind") == p
        ):
            continue  # pydantic's discriminator tag, not a key in the file
        else:
            parts.append(str(p))
            node = node.get(p) if isinstance(node, dict) else None
    return ".".join(parts) or "<top>"
