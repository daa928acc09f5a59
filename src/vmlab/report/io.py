"""Loading and saving reports; every failure to load is one ReportError line."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

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
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise ReportError(
            f"report {path} has schema_version {version}, newer than this vmlab reads ({SCHEMA_VERSION})",
            hint="update vmlab (git pull && make setup) to grade it",
        )
    if version == 1:
        data = upgrade_v1(data)
    elif version != SCHEMA_VERSION:
        raise ReportError(
            f"report {path} has schema_version {version!r}, this vmlab reads 1 and {SCHEMA_VERSION}",
            hint="re-run the lab with this vmlab version",
        )
    try:
        return Report.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise ReportError(f"report {path} is invalid at {where}: {first['msg']}{more}") from None


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 -> 2 in code: check verdicts become outcomes; provenance v1 never had stays empty.

    v1's host.accel was what `auto` would pick on the host; v2 keeps an accelerator only where an
    experiment says its guests used one.
    """
    out = dict(data)
    out["schema_version"] = 2
    host = dict(out.get("host") or {})
    used = _accel_used(out.get("experiments") or {})
    host["accel"], host["accel_reason"] = used if used else (None, None)
    out["host"] = host
    out.setdefault("run", {"lab_sha256": "", "status": "complete"})
    checks = out.get("checks")
    if isinstance(checks, list):
        upgraded = []
        for c in checks:
            if isinstance(c, dict) and "passed" in c:
                c = dict(c)
                passed = bool(c.pop("passed"))
                c["outcome"] = "pass" if passed else "fail"
                c["score"] = 1.0 if passed else 0.0
            upgraded.append(c)
        out["checks"] = upgraded
    return out


def _accel_used(experiments: dict[str, Any]) -> tuple[str, str | None] | None:
    def entries() -> Any:
        for entry in experiments.values():
            if isinstance(entry, dict) and "unit" in entry:
                yield entry
            elif isinstance(entry, dict):
                yield from (e for e in entry.values() if isinstance(e, dict))

    for exp in entries():
        prov = exp.get("provenance") or {}
        if prov.get("backend") == "libvirt" and prov.get("accel"):
            return str(prov["accel"]), prov.get("accel_reason")
    return None


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
