"""`vmlab doctor`'s distro row with its inputs faked: os-release, apt-cache, dpkg and PATH of a Debian
12 host as set up, a Debian 13 host as set up, and a stock Ubuntu 24.04 host (not reachable here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.core.test_distro_resolve import BOOKWORM, NOBLE, TRIXIE, fake

from vmlab.host import distro
from vmlab.host.doctor import probe_distro

DEBIAN_12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
DEBIAN_13 = 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\n'
UBUNTU_24_04 = (
    'PRETTY_NAME="Ubuntu 24.04.3 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n'
)
KERNEL_AMD64 = {"policy linux-image-amd64": "linux-image-amd64:\n  Candidate: 6.12.57-1\n"}
# noble: docker-cli beside docker.io (as the issue has it), linux-image-generic, no linux-image-amd64
NOBLE_APT = {
    **NOBLE,
    "policy docker-cli": "docker-cli:\n  Candidate: 27.5.1-0ubuntu3~24.04.2\n",
    "policy linux-image-generic": "linux-image-generic:\n  Candidate: 6.8.0-88.89\n",
}


def everything(_: str) -> str:
    return "/usr/bin/x"


def test_debian_12_as_set_up_is_ok() -> None:
    row = probe_distro(
        DEBIAN_12, distro.resolve(fake({**BOOKWORM, **KERNEL_AMD64})), lambda _p: True, everything
    )
    assert row.status == "ok", row.detail
    assert "Debian GNU/Linux 12 (bookworm) (tested)" in row.detail
    assert "JDK openjdk-17-jdk-headless, Docker docker.io," in row.detail
    assert row.data["chosen"]["linux_source"] == "linux-source-6.1"
    assert row.fix == ""


def test_debian_13_says_what_it_chose() -> None:
    row = probe_distro(
        DEBIAN_13, distro.resolve(fake({**TRIXIE, **KERNEL_AMD64})), lambda _p: True, everything
    )
    assert row.status == "ok", row.detail
    assert "JDK openjdk-25-jdk-headless, Docker docker.io + docker-cli" in row.detail
    assert "kernel source linux-source-6.12" in row.detail


def test_debian_13_without_the_docker_cli_names_the_package() -> None:
    row = probe_distro(
        DEBIAN_13,
        distro.resolve(fake({**TRIXIE, **KERNEL_AMD64})),
        lambda _p: True,
        lambda t: None if t == "docker" else "/usr/bin/" + t,
    )
    assert row.status == "warn"
    assert row.data["missing"] == ["the docker command"]
    assert row.fix == "apt-get install docker-cli"


def test_stock_ubuntu_24_04_names_each_missing_piece_with_its_fix() -> None:
    installed = {"python3-dev"}  # a stock desktop: no python3-venv, no Docker, no JDK, no runsc
    row = probe_distro(
        UBUNTU_24_04,
        distro.resolve(fake(NOBLE_APT)),
        lambda p: p in installed,
        lambda t: None if t in ("docker", "java", "runsc") else "/usr/bin/" + t,
    )
    assert row.status == "warn"
    assert "Ubuntu 24.04.3 LTS (not a tested release)" in row.detail
    assert row.data["chosen"]["kernel_meta"] == "linux-image-generic"
    fixes = row.fix.split("; ")
    assert fixes == [
        "apt-get install docker-cli",
        "apt-get install openjdk-21-jdk-headless",
        "apt-get install python3-venv",
        "add gVisor's apt repository, then apt-get install runsc",
        "build the images on Debian 12/13 (docs/host-facts.md)",
    ]
    assert len(row.data["missing"]) == len(fixes)
    assert any("gVisor" in n for n in row.data["notes"])


def test_no_os_release_is_an_unknown_release() -> None:
    row = probe_distro("", distro.resolve(fake({})), lambda _p: True, everything)
    assert row.status == "warn"
    assert row.detail.startswith("unknown release")


def test_tool_rows_warn_on_a_release_outside_what_the_labs_know(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The labs' own notes, declared in labs/hll-vm and labs/process-vm lab.toml (`note`), decide."""
    from vmlab.host.doctor import tool_row
    from vmlab.labs.tools import every_lab_tool

    tools = {t.name: t for t in every_lab_tool(pytest.fail)}
    note = tools["java"].version_note("26.0.1")
    assert note is not None and "OpenJDK 26.0.1 is outside" in note
    assert tools["valgrind"].version_note("3.24.0") is None
    note = tools["valgrind"].version_note("3.22.0")
    assert note is not None and "Valgrind 3.22.0 is outside" in note
    # a java on PATH that prints what OpenJDK 26 prints (on stderr): the row reads it as declared
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\necho 'openjdk version \"26.0.1\" 2026-01-20' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    row = tool_row(tools["java"])
    assert (
        row.status == "warn" and row.data["version"] == "26.0.1" and "OpenJDK 26.0.1 is outside" in row.detail
    )
    missing = tool_row(tools["jasmin"])
    assert missing.status == "warn" and missing.fix == "apt-get install jasmin-sable (or make setup)"
