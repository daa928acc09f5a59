"""The tutor's runner's baseline (`vmlab grade calibrate`): the lab's timed figures measured here, kept
with the host's fingerprint, and the ratio comparison a re-run makes against it (the student's median
over the baseline against the re-measured one over it, within the lab's tolerance factor)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from vmlab.errors import BackendError, UsageError

if TYPE_CHECKING:
    pass
from vmlab.grade.measuring import (
    expand,
    experiments_json,
    heads,
    lab_run,
    measure_params,
    median_of,
    param_names,
    step_ok,
)

CALIBRATION_VERSION = 1


# ---- the ratio comparison ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RatioVerdict:
    """The student's median and the re-measured one, each over the runner's baseline median."""

    student: float  # student median / baseline
    runner: float  # re-measured median / baseline
    factor: float  # how far apart the two ratios are, >= 1
    ok: bool

    def measured(self) -> str:
        return f"x{self.student:.3g} of the runner's baseline"

    def expected(self, tolerance: float) -> str:
        return f"x{self.runner:.3g} (re-measured), within a factor {tolerance:g}"


def compare_ratio(student: float, runner: float, baseline: float, tolerance: float) -> RatioVerdict:
    """student/baseline against runner/baseline: they agree when neither is more than `tolerance` times
    the other. The baseline makes both figures comparable with the runner's own calibrated state."""
    if min(student, runner, baseline) <= 0 or tolerance < 1:
        raise ValueError("medians and the baseline must be positive and the tolerance >= 1")
    s, r = student / baseline, runner / baseline
    factor = max(s / r, r / s)
    return RatioVerdict(student=s, runner=r, factor=factor, ok=factor <= tolerance)


# ---- calibration ------------------------------------------------------------------------------------


def host_fingerprint() -> tuple[str, dict[str, Any]]:
    from vmlab.host.fingerprint import machine_fingerprint

    return machine_fingerprint()


class Calibration(BaseModel):
    """The runner's medians of a lab's timed figures, measured once by `vmlab grade calibrate`."""

    model_config = ConfigDict(extra="forbid")
    version: int = CALIBRATION_VERSION
    lab: str
    lab_sha256: str
    vmlab_version: str
    created_at: dt.datetime
    fingerprint: str
    host: dict[str, Any]
    params: dict[str, dict[str, Any]]  # the step parameters the medians were measured with
    medians: dict[str, float]


def calibration_path(lab: str) -> Path:
    from vmlab.paths import vmlab_home

    return vmlab_home() / "calibration" / f"{lab}.json"


def read_calibration(lab: str, path: Path | None = None) -> tuple[Calibration | None, str]:
    """This host's calibration of `lab`, or None and one line saying why it cannot be used."""
    from pydantic import ValidationError

    p = path or calibration_path(lab)
    fix = f"run `vmlab grade calibrate --lab {lab}` on this runner once"
    try:
        cal = Calibration.model_validate_json(p.read_bytes())
    except FileNotFoundError:
        return None, f"no calibration of this runner for {lab} ({p}): {fix}"
    except (OSError, ValidationError, ValueError) as e:
        return None, f"calibration {p} is unreadable ({type(e).__name__}): {fix}"
    fp, _ = host_fingerprint()
    if cal.lab != lab:
        return None, f"calibration {p} is of lab {cal.lab}: {fix}"
    if cal.fingerprint != fp:
        return None, f"calibration {p} was measured on another host ({cal.host.get('hostname', '?')}): {fix}"
    return cal, ""


def calibrate(
    lab_name: str,
    output: Path | None = None,
    runs: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Calibration, Path]:
    """Run the lab's timed steps here with the lab's parameters (`runs`/`repeats` set to `runs` when
    given) and store the medians of its timed figures with this host's fingerprint."""
    from vmlab import __version__
    from vmlab.labs.catalog import lab_sha256, load_lab
    from vmlab.report.io import write_atomic, writing

    lab = load_lab(lab_name)
    p = measure_params(lab)
    if not p.timed:
        raise UsageError(f"lab {lab_name!r} declares no timed figures to calibrate", hint="nothing to do")
    steps = [s for s in p.steps if s in heads(p.timed)] or list(p.steps)
    sets: dict[str, dict[str, Any]] = {}
    for s in steps:
        known = param_names(lab, s)
        sets[s] = {k: runs for k in ("runs", "repeats") if runs is not None and k in known}
    fp, host = host_fingerprint()
    with lab_run(lab_name, steps, sets, {}, progress) as report:
        bad = [
            f"{s}: {report.steps[s].message or report.steps[s].status}"
            for s in steps
            if not step_ok(report, s)
        ]
        if bad:  # nothing is written: a baseline of a broken runner would mislead every re-run
            what = "; ".join(bad)
            hint = None if "(fix:" in what else "fix the runner (vmlab doctor), then calibrate again"
            raise BackendError(f"calibration of {lab_name} failed: {what}", hint=hint)
        tree = experiments_json(report)
        medians = {
            shown: m
            for pattern in p.timed
            for shown, node in expand(tree, pattern).items()
            if (m := median_of(node)) is not None
        }
        params = {s: report.steps[s].params for s in steps}
    cal = Calibration(
        lab=lab_name,
        lab_sha256=lab_sha256(lab_name),
        vmlab_version=__version__,
        created_at=dt.datetime.now(dt.UTC),
        fingerprint=fp,
        host=host,
        params=params,
        medians=medians,
    )
    dest = output or calibration_path(lab_name)
    elsewhere = "write it elsewhere with -o FILE"
    with writing(dest.parent, elsewhere=elsewhere):
        dest.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(dest, cal.model_dump_json(indent=2) + "\n", elsewhere=elsewhere)
    return cal, dest


def run_calibration(
    lab_name: str, output: Path | None, runs: int | None, progress: Callable[[str], None]
) -> tuple[Calibration, Path]:
    """`vmlab grade calibrate`: the lab's `[rerun] calibrate` hook (a lab without one has no baseline)."""
    from vmlab.labs.catalog import load_lab, resolve, usable_labs

    lab = load_lab(lab_name)
    if lab.rerun is None or lab.rerun.calibrate is None:
        timed = [x.lab.name for x in usable_labs(lambda _m: None) if x.rerun and x.rerun.calibrate]
        raise UsageError(
            f"lab {lab_name!r} has no timed figures to calibrate (no [rerun] calibrate in its lab.toml)",
            hint=f"calibrate {', '.join(timed) or 'a lab whose [rerun] names a calibrate hook'}",
        )
    hook = resolve(lab.rerun.calibrate, "calibrate hook")
    cal, path = hook(lab_name, output, runs, progress)
    return cal, path
