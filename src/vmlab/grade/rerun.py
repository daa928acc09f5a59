"""Re-running a student's submitted code on hidden inputs: the strong check.

The hidden inputs come from the tutor's secret and the student id (`derive`), so each student gets
their own, a regrade gets the same ones, and nobody without the secret can compute them. The secret
never leaves this process: the container sees only the inputs derived from it. Each lab's `[rerun]`
hook (`module:function`, in the lab's own package) turns the derived bytes into inputs, runs the recorded code
in the sandbox and grades the result against an oracle computed here, outside the container, so a
student's code that prints a fake result line gains nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from vmlab.errors import BackendError, VmlabError
from vmlab.report.model import CheckResult

if TYPE_CHECKING:
    from vmlab.grade.handins import HandIn
    from vmlab.grade.sandbox import Sandbox, SandboxResult
    from vmlab.report.model import Report
    from vmlab.spec.lab import Lab
    from vmlab.spec.tables import Rerun

_SANDBOX: dict[str, Sandbox] = {}


def derive(secret: bytes, lab: str, student: str, purpose: str, n: int = 32) -> bytes:
    """n bytes that only the secret's holder can compute, distinct per lab, student and purpose."""
    out = b""
    counter = 0
    while len(out) < n:
        msg = f"vmlab rerun\0{lab}\0{student}\0{purpose}\0{counter}".encode()
        out += hmac.new(secret, msg, hashlib.sha256).digest()
        counter += 1
    return out[:n]


@dataclass
class RerunContext:
    """What a lab's re-run hook gets. `inputs` are the student's recorded files (name -> path).

    `spec.solutions` is what the hook's in-container half must refuse to the student's code
    (`vmlab.grade.sandbox.install_guard`); the image already leaves those files out.
    """

    lab: Lab
    spec: Rerun
    report: Report
    student: str
    inputs: dict[str, Path]
    secret: bytes
    progress: Callable[[str], None]
    sandbox_factory: Callable[[], Sandbox]

    def derive(self, purpose: str, n: int = 32) -> bytes:
        return derive(self.secret, self.lab.lab.name, self.student, purpose, n)

    def run(self, argv: list[str], files: dict[str, bytes], **overrides: Any) -> SandboxResult:
        from vmlab.grade.sandbox import Limits

        s = self.spec
        limits = Limits(timeout_s=s.timeout_s, cpus=s.cpus, memory_mb=s.memory_mb, kvm=s.kvm)
        if overrides:
            limits = Limits(**{**limits.__dict__, **overrides})
        sandbox = self.sandbox_factory()
        self._check_plan(sandbox)
        return sandbox.run(argv, files, limits)

    def _check_plan(self, sandbox: Sandbox) -> None:
        """Never run a student's code in an image that may hold this lab's solutions (a lab that is not in
        the catalog the image was planned from), nor one that lacks this lab's entry modules."""
        from vmlab.grade.sandbox import is_solution

        plan = sandbox.plan
        missing = [m for m in self.spec.solutions if not is_solution(m, plan.solutions)]
        absent = [m for m in self.spec.modules if m not in plan.entry]
        if missing or absent:
            why = f"keeps {', '.join(missing)}" if missing else f"was built without {', '.join(absent)}"
            raise BackendError(f"the re-run image {sandbox.image} {why}: it was planned from other labs")

    def check(
        self,
        check_id: str,
        ok: bool | None,
        message: str = "",
        *,
        claimed: bool = False,
        skipped: bool = False,
        **fields: Any,
    ) -> CheckResult:
        """A re-run check: ok None is `error` (not gradable); worth no points, required unless timing.

        `claimed`: the report claims what this check re-tests, so failing it means the report claims what
        the code does not do (kind `rerun-claim`, see vmlab.grade.classgrade). `skipped`: not compared,
        and the message says why (e.g. no calibration of this runner): neither the student's loss nor a
        fault to review.
        """
        timing = bool(fields.pop("timing", False))
        fields.setdefault("task", self.spec.task)
        outcome = "skipped" if skipped else "error" if ok is None else ("pass" if ok else "fail")
        return CheckResult(
            id=f"rerun:{check_id}",
            kind="rerun-claim" if claimed else "rerun",
            outcome=outcome,  # type: ignore[arg-type]
            required=not timing,
            timing=timing,
            points=0.0,
            message=message,
            **fields,
        )


def recorded_inputs(report: Report, report_dir: Path, names: list[str]) -> dict[str, Path]:
    """The student's files (or folders) as the report recorded them under artifacts/, only if their sha256
    agrees."""
    from vmlab.spec.digest import sha256_file

    found: dict[str, Path] = {}
    for name in names:
        rec = report.inputs.get(name)
        if rec is None or rec.kind not in ("file", "dir"):
            continue
        rel = PurePosixPath(rec.artifact)
        if rel.is_absolute() or ".." in rel.parts:
            continue
        p = report_dir / rel
        if p.is_symlink():
            continue
        digest = (
            sha256_file(p)
            if rec.kind == "file" and p.is_file()
            else _dir_sha256(p)
            if rec.kind == "dir" and p.is_dir()
            else None
        )
        if digest is not None and digest == rec.sha256:
            found[name] = p
    return found


def _dir_sha256(root: Path) -> str | None:
    """A recorded folder's hash as the pipeline computes it (each file's relative name and sha256);
    None when it holds a symlink, which could make the runner read files outside the hand-in."""
    from vmlab.spec.digest import sha256_tree

    if any(p.is_symlink() for p in root.rglob("*")):
        return None
    return sha256_tree(root)


def _sandbox(progress: Callable[[str], None]) -> Sandbox:
    from vmlab.grade.sandbox import Sandbox

    if "default" not in _SANDBOX:
        _SANDBOX["default"] = Sandbox(progress)
    return _SANDBOX["default"]


def rerun_checks(
    h: HandIn, report: Report, lab: Lab, secret: bytes, progress: Callable[[str], None] | None = None
) -> list[CheckResult]:
    """The lab hook's checks; anything that stops the hook is one `error` check (not the student's loss)."""
    from vmlab.labs.catalog import resolve

    say = progress or (lambda _m: None)
    spec = lab.rerun
    if spec is None:
        return []
    inputs = recorded_inputs(report, h.directory, spec.inputs)
    if (
        not inputs and spec.where == "container"
    ):  # a lab with several inputs (one per task) re-runs those the student handed in
        return [
            CheckResult(
                id="rerun:inputs",
                kind="rerun",
                outcome="fail",
                points=0.0,
                message=(
                    f"no recorded {' or '.join(spec.inputs)} under artifacts/ matching the report's sha256"
                ),
                expected="the submitted code, as the report recorded it",
            )
        ]
    ctx = RerunContext(
        lab=lab,
        spec=spec,
        report=report,
        student=h.student,
        inputs=inputs,
        secret=secret,
        progress=say,
        sandbox_factory=lambda: _sandbox(say),
    )
    try:
        hook = resolve(spec.hook, "rerun hook")
        results: list[CheckResult] = list(hook(ctx))
    except VmlabError as e:
        return [CheckResult(id="rerun", kind="rerun", outcome="error", points=0.0, message=e.one_line())]
    except Exception as e:  # a grader fault is never the student's loss
        msg = f"re-run failed: {type(e).__name__}: {e}"
        return [CheckResult(id="rerun", kind="rerun", outcome="error", points=0.0, message=msg)]
    return results
