"""Real lab runs, made once per session and shared: a class of kvm-api hand-ins (the lab whose task
`own` takes a student file), an isa-emulation hand-in with a correct engine and one with an engine that
returns the public oracle constants, and isa-emulation hand-ins whose engines run vmlab's own reference
code (CHEATS). Probes are independent of vmlab: opening /dev/kvm, `docker info`."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import probe_command, unavailable

DATA = Path(__file__).resolve().parents[2] / "data"

CORRECT_ENGINE = '''\
def run(code, a, l):
    """A plain decode-and-dispatch loop with 32-bit wrap-around."""
    def w(x):
        x &= 0xFFFFFFFF
        return x - (1 << 32) if x & 0x80000000 else x
    ip = n = 0
    while True:
        op = code[ip]
        n += 1
        ip += 1
        if op == 0:
            return a, l, n
        if op == 1:
            a = 0
        elif op == 2:
            a = w(a + 3)
        elif op == 3:
            a = w(a - 1)
        elif op == 4:
            l = a
        elif op == 5:
            l = w(l - 1)
            if l > 0:
                ip -= 7
'''

# Knows the public scenarios' answers (the oracle table of the task sheet) and nothing else.
CONSTANTS_ENGINE = """\
from vmlab.isa.gen import SCENARIOS, scenario_program

KNOWN = {scenario_program(n).code: (s.final_a, s.executed) for n, s in SCENARIOS.items()}


def run(code, a, l):
    final_a, executed = KNOWN.get(bytes(code), (0, 1))
    return final_a, 0, executed
"""

# Engines that hand in vmlab's own answer. On the student's machine (the full vmlab) each one works and
# its report claims every public oracle; the re-run image holds no reference engine and refuses them.
SWITCH_IMPORT_ENGINE = """\
from vmlab.isa.engines.switch import run
"""

IMPORTLIB_ENGINE = """\
import importlib

_ENGINE = importlib.import_module("vmlab" + ".isa." + "engines" + ".switch")


def run(code, a, l):
    return _ENGINE.run(code, a, l)
"""

# imports the reference interpreter only when first called, through __import__
LAZY_REFERENCE_ENGINE = """\
def run(code, a, l):
    reference = __import__("vmlab.isa.reference", fromlist=["run_reference"])
    from vmlab.isa.machine import Program

    r = reference.run_reference(Program(code=bytes(code), a=a, l=l))
    return r.a, r.l, r.executed
"""

# no import of the engine: reads switch.py next to the installed vmlab and executes its text
READ_SOURCE_ENGINE = """\
import os

import vmlab.isa

PATH = os.path.join(os.path.dirname(vmlab.isa.__file__), "engines", "switch.py")
NS = {"__name__": "copied_switch"}
with open(PATH) as f:
    exec(compile(f.read(), "switch.py", "exec"), NS)
run = NS["run"]
"""

CHEATS = {
    "trudy": SWITCH_IMPORT_ENGINE,
    "ursula": IMPORTLIB_ENGINE,
    "victor": LAZY_REFERENCE_ENGINE,
    "walter": READ_SOURCE_ENGINE,
}


@pytest.fixture(scope="session")
def kvm_ok() -> None:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        unavailable("/dev/kvm", f"cannot be opened: {e.strerror}")
    os.close(fd)


@pytest.fixture(scope="session")
def docker_ok() -> None:
    why = probe_command(["docker", "info"])
    if why is not None:
        unavailable("docker", why)


_HOME: list[Path] = []


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The lab runs' VMLAB_HOME. It is set only around each run (see `run`), never for the session:
    other session fixtures (the integration test home that QEMU must read) own the variable."""
    home = tmp_path_factory.mktemp("grade-home")
    _HOME.append(home)
    yield home
    _HOME.remove(home)


def run(lab: str, out: Path, student: str | None, home: Path | None = None, **kw: object) -> Path:
    """A real lab run; `home` (default: the grade session's) is its VMLAB_HOME, e.g. the integration
    home that holds the tiny image for labs that boot guests."""
    from vmlab.labs.pipeline import RunRequest, run_lab

    report = out / "report.json"
    mp = pytest.MonkeyPatch()
    if home is not None or _HOME:
        mp.setenv("VMLAB_HOME", str(home or _HOME[-1]))
    try:
        run_lab(RunRequest(lab=lab, student=student, output=report, **kw))  # type: ignore[arg-type]
    finally:
        mp.undo()
    return report


ISA_SETS = {"oracle": {"scenarios": [1, 2, 3], "repeats": 1}, "t1": {"scenarios": [1, 2, 3]}}


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory: pytest.TempPathFactory, session_home: Path) -> Path:
    return tmp_path_factory.mktemp("real-runs")


@pytest.fixture(scope="session")
def kvm_runs(runs_root: Path, kvm_ok: None) -> list[Path]:
    """kvm-api --task own for s01..s20, each with the student's own copy of a solution program."""
    reports = []
    for i in range(1, 21):
        prog = runs_root / "programs" / f"s{i:02d}" / "line.asm"
        prog.parent.mkdir(parents=True)
        prog.write_text((DATA / "kvm-api" / "line_hypercall.asm").read_text() + f"; written by s{i:02d}\n")
        out = runs_root / "kvm" / f"s{i:02d}"
        reports.append(run("kvm-api", out, f"s{i:02d}", tasks=["own"], inputs={"program": prog}))
    return reports


@pytest.fixture(scope="session")
def warmup_run(runs_root: Path) -> Path:
    return run("warmup", runs_root / "warmup", "wendy")


def _isa_t1_runs(runs_root: Path, sources: dict[str, str]) -> dict[str, Path]:
    """isa-emulation task t1 on S1-S3, one run per student with that student's engine source."""
    engines = runs_root / "engines"
    engines.mkdir(exist_ok=True)
    out = {}
    for student, source in sources.items():
        (engines / f"{student}.py").write_text(source)
        out[student] = run(
            "isa-emulation",
            runs_root / "isa" / student,
            student,
            tasks=["t1-interpret"],
            sets=ISA_SETS,
            inputs={"t1": engines / f"{student}.py"},
        )
    return out


@pytest.fixture(scope="session")
def isa_runs(runs_root: Path) -> dict[str, Path]:
    """A correct engine (ivy) and one returning the public constants (mallory)."""
    return _isa_t1_runs(runs_root, {"ivy": CORRECT_ENGINE, "mallory": CONSTANTS_ENGINE})


@pytest.fixture(scope="session")
def cheat_runs(runs_root: Path) -> dict[str, Path]:
    """Each of CHEATS' engines, run here with the full vmlab."""
    return _isa_t1_runs(runs_root, CHEATS)


def copy_hand_in(report: Path, dest: Path) -> Path:
    """A hand-in as a student uploads it: report.json with its artifacts/ beside it."""
    dest.mkdir(parents=True)
    shutil.copy(report, dest / "report.json")
    if (report.parent / "artifacts").is_dir():
        shutil.copytree(report.parent / "artifacts", dest / "artifacts")
    return dest / "report.json"


def edit(report: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(report.read_text())
    change(data)
    report.write_text(json.dumps(data, indent=2))


@pytest.fixture(scope="session")
def cli() -> Callable[..., Any]:
    """`vmlab ...` through Typer's CliRunner."""
    from typer.testing import CliRunner

    from vmlab.cli.main import app

    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke
