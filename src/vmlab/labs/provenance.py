"""Where a report came from, and what it must not leak: the running vmlab's git commit, and the
user's home directory scrubbed from every string a step returns."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from vmlab.report.model import ExperimentEntry


def vmlab_commit() -> tuple[str | None, bool | None]:
    """The git commit of the running vmlab when it runs from a checkout, and whether it is modified."""
    src = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None:
        return None, None

    def git(*args: str) -> str | None:
        try:
            p = subprocess.run(
                ["git", "-C", str(src), *args], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return p.stdout.strip() if p.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return commit, (bool(status) if status is not None else None)


def scrub(value: Any, home: str) -> Any:
    """Replace the user's home directory in every string by ~, so no report leaks it."""
    if isinstance(value, str):
        return value.replace(home, "~") if home and home != "/" else value
    if isinstance(value, dict):
        return {k: scrub(v, home) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, home) for v in value]
    return value


def scrub_entries(produced: dict[str, ExperimentEntry], home: str) -> dict[str, ExperimentEntry]:
    """A step's experiments with the home directory scrubbed from every string in them."""
    from pydantic import TypeAdapter

    adapter: TypeAdapter[ExperimentEntry] = TypeAdapter(ExperimentEntry)
    out: dict[str, ExperimentEntry] = {}
    for key, entry in produced.items():
        raw = adapter.dump_python(entry, mode="json")
        out[key] = adapter.validate_python(scrub(raw, home))
    return out
