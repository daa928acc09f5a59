"""vmlab.release's pure parts on small made-up inputs: removing the tutors' tables of a lab.toml, and
deciding which declared solutions the shipped code imports (the kit itself: tests/integration/release)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from vmlab.errors import LabError
from vmlab.release import imports_of, split_solutions, strip_tutor_tables

LAB_TOML = """\
# the lab's own introduction
[lab]
name = "x"
title = "X"

[[checks]]
id = "a"
kind = "present"
path = "s.v"

# ---- tutors: re-runs
# (two lines of introduction)

[rerun]
hook = "m:f"
# a comment inside the table
solutions = ["pkg.answers"]

[rerun.params]
n = 3

[[bounds]]
path = "s"
lo = 0

# ---- the students' part again
[[checks]]
id = "b"
kind = "present"
path = "s.w"
"""

EXPECTED = """\
# the lab's own introduction
[lab]
name = "x"
title = "X"

[[checks]]
id = "a"
kind = "present"
path = "s.v"

# ---- the students' part again
[[checks]]
id = "b"
kind = "present"
path = "s.w"
"""


def test_the_tutors_tables_and_their_introduction_go_the_rest_stays_as_written() -> None:
    text, removed = strip_tutor_tables(LAB_TOML)
    assert text == EXPECTED
    assert removed == ["rerun", "bounds"]
    assert tomllib.loads(text) == {k: v for k, v in tomllib.loads(LAB_TOML).items() if k not in removed}
    assert strip_tutor_tables(text) == (text, [])  # idempotent


def test_a_lab_toml_without_them_comes_back_byte_for_byte() -> None:
    text = 'title = "no tables"\n\n\n[lab]\nname = "x"\n'
    assert strip_tutor_tables(text) == (text, [])


def test_a_header_inside_a_multiline_string_is_refused_not_released_half_right() -> None:
    tricky = '[lab]\nname = "x"\ndescription = """\n[rerun]\nnot a table\n"""\ntitle = "X"\n'
    with pytest.raises(LabError, match="would change other keys"):
        strip_tutor_tables(tricky)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    src = tmp_path / "src"
    for rel, text in files.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


def test_imports_at_run_time_count_type_checking_ones_do_not(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "vmlab/__init__.py": "",
            "vmlab/a/__init__.py": "",
            "vmlab/a/b.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from vmlab.hidden import T\n"
                "def f():\n    from . import c\n    import vmlab.d\n"
                "from ..e import g\n"
            ),
            "vmlab/a/c.py": "",
        },
    )
    known = {"vmlab", "vmlab.a", "vmlab.a.b", "vmlab.a.c", "vmlab.d", "vmlab.e"}
    found = imports_of("vmlab.a.b", src / "vmlab/a/b.py", known)
    assert found == {"vmlab.a", "vmlab.a.c", "vmlab.d", "vmlab.e"}


def test_a_declared_solution_stays_only_when_shipped_code_imports_it(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "vmlab/__init__.py": "",
            "vmlab/lab.py": "from vmlab.registry import load\n",
            "vmlab/registry.py": (
                "TABLE = {'x': 'vmlab.engines.x'}\ndef load():\n    from vmlab.oracle import run\n"
            ),
            "vmlab/oracle.py": "",
            "vmlab/engines/__init__.py": "from vmlab.registry import load\n",
            "vmlab/engines/x.py": "from vmlab.engines import load\n",
            "vmlab/answers.py": "",
        },
    )
    declared = {s: ["lab"] for s in ("vmlab.engines", "vmlab.registry", "vmlab.oracle", "vmlab.answers")}
    left, kept = split_solutions(src, declared)
    assert left == ["vmlab.answers", "vmlab.engines"]  # named by a string only, or imported by nobody
    assert {k.module: k.imported_by for k in kept} == {
        "vmlab.registry": ["vmlab.lab"],
        "vmlab.oracle": ["vmlab.registry"],  # kept code is shipped code: the fixed point
    }
