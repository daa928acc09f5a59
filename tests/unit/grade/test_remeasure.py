"""The measurement labs' re-run: the ratio comparison against the runner's baseline, the calibration
file (another host's is not used), and path patterns. Expected values are derived by hand below."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from vmlab.grade import calibration
from vmlab.grade.calibration import Calibration, compare_ratio, read_calibration
from vmlab.grade.measuring import expand


def test_ratios_to_the_baseline_agree_within_the_tolerance() -> None:
    # student 3 ms, re-measured 2 ms, baseline 1 ms: ratios 3 and 2; 3/2 = 1.5 <= 2 -> agree
    v = compare_ratio(0.003, 0.002, 0.001, 2.0)
    assert v.student == pytest.approx(3.0) and v.runner == pytest.approx(2.0)
    assert v.factor == pytest.approx(1.5) and v.ok
    # student 10 ms, re-measured 2 ms, baseline 4 ms: ratios 2.5 and 0.5; 2.5/0.5 = 5 > 3 -> differ
    v = compare_ratio(0.010, 0.002, 0.004, 3.0)
    assert v.student == pytest.approx(2.5) and v.runner == pytest.approx(0.5)
    assert v.factor == pytest.approx(5.0) and not v.ok
    # a slower re-measurement: ratios 1 and 4 (4 ms / 1 ms): the factor is symmetric, 4 > 3
    v = compare_ratio(0.001, 0.004, 0.001, 3.0)
    assert v.factor == pytest.approx(4.0) and not v.ok
    # exactly at the tolerance still agrees: 3 ms against 1 ms is a factor 3
    assert compare_ratio(0.003, 0.001, 0.002, 3.0).ok


def test_a_ratio_needs_positive_figures() -> None:
    with pytest.raises(ValueError):
        compare_ratio(0.0, 1.0, 1.0, 3.0)
    with pytest.raises(ValueError):
        compare_ratio(1.0, 1.0, 1.0, 0.5)


def test_star_expands_to_every_member_the_report_has() -> None:
    tree = {
        "true": {"counts": {"runs": 20}},
        "python": {"counts": {"runs": 5}},
        "uname": {"text": "Linux\n", "counts": {}},
        "traps": {"container": {"counts": {"io:write": 3189}}},
        "jit": {"a.b": {"n": 1}},
    }
    assert expand(tree, "*.counts.runs") == {"python.counts.runs": 5, "true.counts.runs": 20}
    assert expand(tree, "traps.*.counts.io:write") == {"traps.container.counts.io:write": 3189}
    assert expand(tree, 'jit."a.b".n') == {'jit."a.b".n': 1}
    assert expand(tree, "missing.counts") == {}


def _calibration(fingerprint: str, lab: str = "warmup") -> Calibration:
    return Calibration(
        lab=lab,
        lab_sha256="0" * 64,
        vmlab_version="0",
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        fingerprint=fingerprint,
        host={"hostname": "elsewhere"},
        params={"true": {"argv": ["/bin/true"], "runs": 5}},
        medians={"true": 0.001},
    )


def test_a_calibration_of_this_host_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calibration, "host_fingerprint", lambda: ("abc", {}))
    path = tmp_path / "warmup.json"
    path.write_text(_calibration("abc").model_dump_json())
    cal, why = read_calibration("warmup", path)
    assert cal is not None and cal.medians == {"true": 0.001} and why == ""


def test_another_hosts_calibration_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calibration, "host_fingerprint", lambda: ("this-host", {}))
    path = tmp_path / "warmup.json"
    path.write_text(_calibration("other-host").model_dump_json())
    cal, why = read_calibration("warmup", path)
    assert cal is None
    assert "another host (elsewhere)" in why and "vmlab grade calibrate --lab warmup" in why


def test_a_missing_or_broken_calibration_says_to_calibrate(tmp_path: Path) -> None:
    cal, why = read_calibration("warmup", tmp_path / "none.json")
    assert cal is None and "no calibration" in why and "vmlab grade calibrate --lab warmup" in why
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lab": "warmup"}))
    cal, why = read_calibration("warmup", bad)
    assert cal is None and "unreadable" in why


def test_the_fingerprint_names_the_machine_not_its_tools() -> None:
    from vmlab.host.fingerprint import machine_fingerprint

    digest, fields = machine_fingerprint()
    assert len(digest) == 64 and set(fields) >= {"hostname", "cpu_model", "cpu_count", "kernel"}
    assert "versions" not in fields and machine_fingerprint()[0] == digest
