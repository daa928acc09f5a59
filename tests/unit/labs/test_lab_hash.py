"""The lab hash a report records: the same for the tutors' lab.toml and a student kit's (which has no
[rerun] or [[bounds]]), and different as soon as a rule changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmlab.labs.catalog import lab_names, lab_path, lab_sha256
from vmlab.release import strip_tutor_tables


@pytest.mark.parametrize("lab", lab_names())
def test_a_released_lab_toml_has_the_tutors_hash(
    lab: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = lab_path(lab).read_text()
    tutors = lab_sha256(lab)
    stripped, _removed = strip_tutor_tables(original)
    (tmp_path / lab).mkdir()
    (tmp_path / lab / "lab.toml").write_text(stripped)
    monkeypatch.setenv("VMLAB_LABS", str(tmp_path))
    assert lab_sha256(lab) == tutors
    (tmp_path / lab / "lab.toml").write_text("# a comment of the course's own\n" + stripped)
    assert lab_sha256(lab) == tutors  # a comment is no rule
    changed = stripped.replace("[[checks]]\nid = ", "[[checks]]\nrequired = false\nid = ", 1)
    assert changed != stripped
    (tmp_path / lab / "lab.toml").write_text(changed)
    assert lab_sha256(lab) != tutors
