"""`vmlab --help` against a bare Typer app of the same shape (tests/perf/helpstartup.py): medians of
VMLAB_PERF_RUNS (default 21) alternating runs, appended with the host fingerprint to $VMLAB_PERF_OUT
(default runs/perf/help.jsonl). The goal it records (not asserts; issue 20): ratio <= 1.3. Asserts are
about the measurement: both commands succeeded, every run was timed, and both listed the same
commands."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import pytest
from tests.perf.helpstartup import run

pytestmark = [pytest.mark.perf]


def test_help_against_a_bare_typer_app(tmp_path: Path) -> None:
    from vmlab.host.fingerprint import host_info

    runs = int(os.environ.get("VMLAB_PERF_RUNS", "21"))
    result = run(runs, tmp_path)
    assert result["vmlab_rc"] == 0, result["vmlab_stderr"]
    assert result["bare_rc"] == 0, result["bare_stderr"]
    assert len(result["vmlab_help_s"]) == len(result["bare_help_s"]) == runs
    assert result["vmlab_listed"] and result["vmlab_listed"] == result["bare_listed"]
    out = Path(os.environ.get("VMLAB_PERF_OUT", "runs/perf/help.jsonl"))
    out.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": host_info().model_dump(mode="json"),
        **{k: v for k, v in result.items() if not k.endswith("_stderr")},
    }
    with out.open("a") as f:
        f.write(json.dumps(entry) + "\n")
    print(
        f"\nvmlab --help {result['vmlab_median_s'] * 1000:.0f} ms, bare Typer app "
        f"{result['bare_median_s'] * 1000:.0f} ms: ratio {result['ratio']:.2f} (goal <= 1.3) -> {out}",
        file=sys.stderr,
    )
