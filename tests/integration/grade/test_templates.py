"""The tutors' CI templates and the students' Vagrantfile, checked offline with the tools' own validators.

`check-jsonschema` ships the GitHub Actions and GitLab CI schemas (no network needed); every vmlab
command the templates call must exist with the options they pass; `vagrant validate` reads the
Vagrantfile with Debian's vagrant and vagrant-libvirt.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[3]
TEMPLATES = {
    "vendor.github-workflows": ROOT / "ci" / "github" / "grade.yml",
    "vendor.gitlab-ci": ROOT / "ci" / "gitlab" / ".gitlab-ci.yml",
}


def _tool(name: str) -> str:
    venv = ROOT / ".venv" / "bin" / name
    found = str(venv) if venv.exists() else shutil.which(name)
    if found is None:
        unavailable(name, f"{name} is not installed")
    return found


@pytest.mark.parametrize("schema", sorted(TEMPLATES))
def test_template_matches_its_schema(schema: str) -> None:
    p = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", schema, str(TEMPLATES[schema])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert p.returncode == 0, p.stdout + p.stderr


def _calls(text: str) -> list[list[str]]:
    """`vmlab WORD [WORD] --opt ...` of every line that calls vmlab."""
    calls = []
    for m in re.finditer(r"\.venv/bin/vmlab ([^\n]+)", text):
        calls.append(m.group(1).split())
    return calls


@pytest.mark.parametrize("schema", sorted(TEMPLATES))
def test_every_vmlab_command_the_templates_call_exists(schema: str, cli: Any) -> None:
    calls = _calls(TEMPLATES[schema].read_text())
    assert calls
    for argv in calls:
        # `--help` is eager: `grade hand-ins/ --help` shows `grade class`, as the default subcommand runs
        res = cli(*argv[:2], "--help")
        assert res.exit_code == 0, (argv, res.output)
        for opt in (w for w in argv if w.startswith("--")):
            assert opt in res.output, f"vmlab {' '.join(argv[:2])}: no option {opt}"


def test_no_student_triggered_event_runs_on_the_runners() -> None:
    from ruamel.yaml import YAML  # check-jsonschema's own YAML reader (YAML 1.2: `on` stays a string)

    gh = YAML(typ="safe").load(TEMPLATES["vendor.github-workflows"].read_text())
    events = gh["on"]
    assert not {"pull_request", "pull_request_target", "issue_comment"} & set(events)
    assert "${{ secrets." not in TEMPLATES["vendor.github-workflows"].read_text()
    gl = YAML(typ="safe").load(TEMPLATES["vendor.gitlab-ci"].read_text())
    first = gl["workflow"]["rules"][0]
    assert "merge_request_event" in first["if"] and first["when"] == "never"


@pytest.mark.slow
def test_vagrantfile_validates(tmp_path: Path) -> None:
    if shutil.which("vagrant") is None:
        unavailable("vagrant", "apt-get install vagrant vagrant-libvirt (make test installs them)")
    work = tmp_path / "kit"
    work.mkdir()
    shutil.copy(ROOT / "Vagrantfile", work / "Vagrantfile")
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "VAGRANT_HOME": str(tmp_path / ".vagrant.d"),
    }
    p = subprocess.run(
        ["vagrant", "validate"], cwd=work, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "validated successfully" in p.stdout
