"""Loading and saving reports; every failure to load is one ReportError line."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pydantic import ValidationError

from vmlab.errors import ReportError
from vmlab.report.model import SCHEMA_VERSION, Report


def load_report(path: Path) -> Report:
    try:
        raw = path.read_text()
    except FileNotFoundError:
        raise ReportError(f"report {path} does not exist", hint="pass the path printed by the run") from None
    except OSError as e:
        raise ReportError(f"cannot read report {path}: {e.strerror}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ReportError(
            f"report {path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})",
            hint="re-run the lab to write it again",
        ) from None
    if not isinstance(data, dict):
        raise ReportError(f"report {path} is not a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ReportError(
            f"report {path} has schema_version {version!r}, this vmlab reads {SCHEMA_VERSION}",
            hint="re-run the lab with this vmlab version",
        )
    try:
        return Report.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise ReportError(f"report {path} is invalid at {where}: {first['msg']}{more}") from None


def save_report(report: Report, path: Path) -> Path:
    """Write atomically (temp file + rename) so a Ctrl-C never leaves half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(report.model_dump_json(indent=2))
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
