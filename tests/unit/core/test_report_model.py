from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.helpers import measured

from vmlab.errors import ReportError
from vmlab.report.io import load_report, save_report
from vmlab.report.model import Experiment, Report, report_json_schema
from vmlab.report.stats import summarize

ROOT = Path(__file__).resolve().parents[3]


def test_summary_median_min_max_n() -> None:
    s = summarize([3.0, 1.0, 2.0, 10.0])
    assert (s.n, s.median, s.min, s.max) == (4, 2.5, 1.0, 10.0)


def test_summary_of_one_sample() -> None:
    s = summarize([5.0])
    assert (s.n, s.median, s.iqr) == (1, 5.0, 0.0)


def test_summary_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        summarize([])


def test_round_trip(tmp_path: Path, make_report: Callable[..., Report]) -> None:
    report = make_report({"a": measured([1.0, 2.0]), "g": {"vm": measured([3.0]), "ct": measured([1.0])}})
    path = save_report(report, tmp_path / "r.json")
    again = load_report(path)
    assert again == report
    g = again.experiments["g"]
    assert isinstance(g, dict) and isinstance(g["vm"], Experiment)


def test_not_json_is_one_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    p.write_text('{"schema_version": 1, "lab": ')
    with pytest.raises(ReportError, match=r"not valid JSON \(line 1"):
        load_report(p)


def test_wrong_schema_version(tmp_path: Path, make_report: Callable[..., Report]) -> None:
    data = json.loads(make_report({}).model_dump_json())
    data["schema_version"] = 99
    p = tmp_path / "r.json"
    p.write_text(json.dumps(data))
    with pytest.raises(ReportError, match="schema_version 99"):
        load_report(p)


def test_missing_field_names_it(tmp_path: Path, make_report: Callable[..., Report]) -> None:
    data = json.loads(make_report({}).model_dump_json())
    del data["run_id"]
    p = tmp_path / "r.json"
    p.write_text(json.dumps(data))
    with pytest.raises(ReportError, match="invalid at run_id: Field required"):
        load_report(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="does not exist"):
        load_report(tmp_path / "nope.json")


def test_committed_schema_matches_the_model() -> None:
    committed = json.loads((ROOT / "schemas" / "report.schema.json").read_text())
    assert committed == report_json_schema(), "run 'make schema' and commit schemas/report.schema.json"


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path: Path, make_report: Callable[..., Report]) -> None:
    save_report(make_report({}), tmp_path / "r.json")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
