"""The speed baseline a kit can run: the oracle interpreter, as the lab's `oracle` step and as the
re-run's second container load it (from its source file, under a private name)."""

from __future__ import annotations

from pathlib import Path

from vmlab.isa import reference, rerun, rerun_inside
from vmlab.isa.gen import scenario_program

SOLUTION_T1 = Path(__file__).resolve().parents[3] / "labs" / "isa-emulation" / "solution" / "t1_interpret.py"


def test_the_oracle_runs_as_an_engine_with_the_published_outcome() -> None:
    p = scenario_program(3)
    r = reference.run(p.code, p.a, p.l)
    assert (r.a, r.executed) == (95, 719821)  # the homework's S3 oracle (README table)


def test_the_rerun_times_an_engine_against_the_oracle_loaded_from_its_source() -> None:
    # reference.py holds a dataclass: loaded by path under a private name it must still import
    engine = rerun_inside._load_run(SOLUTION_T1, "_test_engine", "run(code, a, l)")
    result: dict[str, object] = {"timing": {}}
    rerun_inside._run_timing(engine, Path(reference.__file__), {"scenario": 1, "repeats": 2}, [], result)
    assert "timing_error" not in result, result
    timing = result["timing"]
    assert isinstance(timing, dict) and sorted(timing) == ["baseline", "candidate"]
    assert len(timing["baseline"]) == len(timing["candidate"]) == 2


def test_the_baseline_is_the_oracle_and_the_report_step_is_oracle() -> None:
    assert rerun.BASELINE == "vmlab.isa.reference" and rerun.BASELINE_STEP == "oracle"
    assert rerun._baseline_source() == Path(reference.__file__).read_bytes()
