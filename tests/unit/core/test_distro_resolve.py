"""Set-up's package choices from apt-cache output captured on Debian 12 (bookworm) and Debian 13
(trixie), and faked for an Ubuntu 24.04-like host (its lists are not reachable from here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vmlab.host import distro

BOOKWORM = {
    "search": "openjdk-17-jdk-headless - OpenJDK Development Kit (JDK) (headless)\n",
    "policy docker-cli": "",
    "policy runsc": "runsc:\n  Installed: (none)\n  Candidate: 0.0~20221219.0-2+b3\n  Version table:\n",
    "depends linux-source": "linux-source\n  Depends: linux-source-6.1\n",
}
TRIXIE = {
    "search": (
        "openjdk-21-jdk-headless - OpenJDK Development Kit (JDK) (headless)\n"
        "openjdk-25-jdk-headless - OpenJDK Development Kit (JDK) (headless)\n"
    ),
    "policy docker-cli": "docker-cli:\n  Installed: (none)\n  Candidate: 26.1.5+dfsg1-9+deb13u1+b1\n",
    "policy runsc": "runsc:\n  Installed: (none)\n  Candidate: 0.0~20240729.0-4+b7\n",
    "depends linux-source": "linux-source\n  Depends: linux-source-6.12\n",
}
# Ubuntu 24.04 (noble): openjdk 8/11/17/21 in main, no runsc in its archive (gVisor's own repository).
NOBLE = {
    "search": "".join(
        f"openjdk-{v}-jdk-headless - OpenJDK Development Kit (JDK) (headless)\n" for v in (8, 11, 17, 21)
    ),
    "policy docker-cli": "",
    "policy runsc": "runsc:\n  Installed: (none)\n  Candidate: (none)\n",
    "depends linux-source": "linux-source\n  Depends: linux-source-6.8.0\n",
}


def fake(outputs: dict[str, str]) -> distro.Runner:
    def run(argv: list[str]) -> str:
        assert argv[0] == "apt-cache"
        key = "search" if argv[1] == "search" else " ".join(argv[1:])
        return outputs.get(key, "")

    return run


def test_debian_12() -> None:
    c = distro.resolve(fake(BOOKWORM))
    assert (c.jdk, c.docker, c.linux_source, c.runsc) == (
        "openjdk-17-jdk-headless",
        ["docker.io"],
        "linux-source-6.1",
        True,
    )
    assert c.packages() == ["openjdk-17-jdk-headless", "docker.io", "runsc"]
    assert c.notes == []


def test_debian_13_has_the_cli_apart_and_a_newer_jdk() -> None:
    c = distro.resolve(fake(TRIXIE))
    assert c.jdk == "openjdk-25-jdk-headless"  # 25 > 21: by number, not by line order
    assert c.docker == ["docker.io", "docker-cli"]
    assert c.linux_source == "linux-source-6.12"
    assert c.runsc


def test_ubuntu_24_04_has_no_runsc_and_says_so() -> None:
    c = distro.resolve(fake(NOBLE))
    assert c.jdk == "openjdk-21-jdk-headless"
    assert not c.runsc and "runsc" not in c.packages()
    assert any("gVisor" in n for n in c.notes)


def test_no_lists_falls_back_with_a_note() -> None:
    c = distro.resolve(fake({}))
    assert c.jdk == distro.JDK_FALLBACK
    assert c.linux_source is None
    assert any("assuming" in n for n in c.notes)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("openjdk-8-jdk-headless - x\nopenjdk-11-jdk-headless - x\n", "openjdk-11-jdk-headless"),
        ("openjdk-21-jdk - not headless\nopenjdk-17-jdk-headless - x\n", "openjdk-17-jdk-headless"),
        ("", None),
    ],
)
def test_newest_jdk_compares_numbers(text: str, want: str | None) -> None:
    assert distro.newest_jdk(text) == want


def test_os_release() -> None:
    text = 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nVERSION_ID="13"\nID=debian\n# c\n'
    assert distro.os_release(text) == {
        "PRETTY_NAME": "Debian GNU/Linux 13 (trixie)",
        "VERSION_ID": "13",
        "ID": "debian",
    }


def test_the_script_runs_without_vmlab_on_the_path(tmp_path: Path) -> None:
    """Set-up runs it with the system python3 before any venv: standard library only."""
    src = Path(distro.__file__)
    copy = tmp_path / "distro.py"
    copy.write_text(src.read_text())
    p = subprocess.run(
        [sys.executable, "-I", str(copy), "bogus"], capture_output=True, text=True, check=False
    )
    assert p.returncode == 2 and "usage" in p.stderr
