"""Program files and the error paths that need no /dev/kvm (a mocked os.open for EACCES: we run as root)."""

import errno
from pathlib import Path

import pytest

from vmlab.errors import NotAvailable, UsageError
from vmlab.kvmapi import machine, probe
from vmlab.kvmapi.guest import from_file, parse_hex
from vmlab.kvmapi.programs import builtin, message


def test_parse_hex_accepts_comments_and_forms() -> None:
    assert parse_hex("b0 02 ; mov al,2\n# comment\n0xf4\nEEee") == bytes.fromhex("b002f4eeee")


def test_parse_hex_names_bad_token_and_line() -> None:
    with pytest.raises(UsageError, match=r"x\.hex line 2: 'zz' is not hex bytes"):
        parse_hex("f4\nzz", "x.hex")


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("p.txt", b"f4", "unknown program file type '.txt'"),
        ("p.hex", b"; nothing\n", "holds no code"),
        ("p.asm", b"; nothing\n", "assembles to no code"),
        ("p.asm", b"\xff\xfe", "is not UTF-8"),
        ("p.hex", b"f4 g", "is not hex bytes"),
    ],
)
def test_invalid_program_files(tmp_path: Path, name: str, content: bytes, fragment: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UsageError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        from_file(path)


def test_missing_program_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        from_file(tmp_path / "nope.asm")


def test_builtin_n_validation() -> None:
    with pytest.raises(UsageError, match="no built-in program 'nope'"):
        builtin("nope")
    with pytest.raises(UsageError, match="out of range"):
        builtin("out", 0)
    with pytest.raises(UsageError, match="takes no -n"):
        builtin("hello", 5)


def test_message_is_1024_bytes_of_64_byte_lines() -> None:
    m = message()
    assert len(m) == 1024
    assert all(len(line) == 63 for line in m.splitlines())


def test_missing_device_is_not_available(tmp_path: Path) -> None:
    with pytest.raises(NotAvailable, match="does not exist") as info:
        machine.Kvm(str(tmp_path / "kvm"))
    assert info.value.exit_code == 3
    assert info.value.hint and "modprobe" in info.value.hint


def test_permission_denied_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    def deny(path: str, flags: int) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(machine.os, "open", deny)
    with pytest.raises(NotAvailable, match="no permission to open /dev/kvm") as info:
        machine.Kvm()
    assert info.value.hint and "chmod 660" in info.value.hint


def test_probe_never_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absent = probe(str(tmp_path / "kvm"))
    assert absent["present"] is False and absent["accessible"] is False
    (tmp_path / "kvm").write_text("")
    monkeypatch.setattr(machine.os, "open", lambda p, f: (_ for _ in ()).throw(PermissionError(13, "denied")))
    denied = probe(str(tmp_path / "kvm"))
    assert denied["present"] is True and denied["accessible"] is False
    assert "no permission" in denied["error"]
