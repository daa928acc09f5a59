"""Signatures, derived hidden inputs, shards and class-wide flags, on small values worked out by hand."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from vmlab.errors import UsageError
from vmlab.grade.classgrade import parse_shard, take_shard
from vmlab.grade.flags import cross_flags
from vmlab.grade.handins import HandIn
from vmlab.grade.model import ClassOptions, Fingerprint, StudentResult
from vmlab.grade.publish import publish
from vmlab.grade.rerun import derive
from vmlab.grade.sign import canonical, read_key, signature, verify, write_key


def test_signature_is_hmac_sha256_of_sorted_compact_json(tmp_path: Path) -> None:
    key = b"k" * 32
    raw = {"b": 1, "a": [1.5, "x"], "checks": [], "grade": None}
    # independent: the bytes spelled out by hand, then Python's hmac
    assert canonical(raw) == b'{"a":[1.5,"x"],"b":1}'
    sig = signature(raw, key)
    assert sig["value"] == hmac.new(key, b'{"a":[1.5,"x"],"b":1}', hashlib.sha256).hexdigest()
    signed = {**raw, "signature": sig, "grade": {"score": 3}}  # grading output is not signed content
    assert verify(signed, key) == (True, "")
    signed["b"] = 2
    assert verify(signed, key)[0] is False
    assert verify({**raw, "signature": sig}, b"o" * 32) == (False, "signed with another key")


def test_key_files_must_be_private(tmp_path: Path) -> None:
    path = write_key(tmp_path / "key")
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(read_key(path)) == 64
    path.chmod(0o644)
    with pytest.raises(UsageError, match="readable by others"):
        read_key(path)
    with pytest.raises(FileExistsError):
        write_key(path)


def test_derived_inputs_depend_on_secret_student_and_purpose() -> None:
    a = derive(b"s" * 32, "isa-emulation", "alice", "program-1-0", 48)
    assert len(a) == 48 and a == derive(b"s" * 32, "isa-emulation", "alice", "program-1-0", 48)
    assert (
        a[:32]
        == hmac.new(
            b"s" * 32, b"vmlab rerun\0isa-emulation\0alice\0program-1-0\0" + b"0", hashlib.sha256
        ).digest()
    )
    others = {
        derive(b"t" * 32, "isa-emulation", "alice", "program-1-0"),
        derive(b"s" * 32, "isa-emulation", "bob", "program-1-0"),
        derive(b"s" * 32, "isa-emulation", "alice", "program-2-0"),
    }
    assert a[:32] not in others and len(others) == 3


def test_shards_partition_the_class() -> None:
    hands = [HandIn(path=Path(f"{i}.json"), name_id=f"s{i:02d}", shown=str(i)) for i in range(10)]
    parts = [take_shard(hands, (i, 3)) for i in (1, 2, 3)]
    assert sorted(h.name_id for p in parts for h in p) == sorted(h.name_id for h in hands)
    assert [len(p) for p in parts] == [4, 3, 3]
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "x"):
        with pytest.raises(UsageError):
            parse_shard(bad)


def test_cross_flags_name_both_sides_and_are_recomputed() -> None:
    def student(name: str, run_id: str, samples: list[str]) -> StudentResult:
        return StudentResult(
            student=name,
            source=name,
            status="graded",
            fingerprint=Fingerprint(run_id=run_id, samples=samples),
        )

    out = cross_flags([student("a", "r1", ["x"]), student("b", "r2", ["x"]), student("c", "r3", ["y"])])
    flags = {s.student: {(f.code, f.message) for f in s.flags} for s in out}
    assert flags["a"] == {("same-samples", "same raw samples as b")}
    assert flags["b"] == {("same-samples", "same raw samples as a")}
    assert flags["c"] == set()
    assert [s.flags for s in cross_flags(out)] == [s.flags for s in out]  # idempotent after a merge
    published, _ = publish(out, ClassOptions())
    assert [s.status for s in published] == ["review", "review", "graded"]
    assert json.loads(published[0].model_dump_json())["status"] == "review"


def test_hidden_isa_programs_are_always_valid_generator_input() -> None:
    from vmlab.isa.gen import check_params
    from vmlab.isa.rerun import RerunParams, hidden_program

    p = RerunParams()
    for i in range(200):
        raw = hashlib.sha256(str(i).encode()).digest()
        _seed, size, probs = hidden_program(raw, p)
        assert p.min_size <= size <= p.max_size
        check_params(size, probs)  # raises on what the generator refuses


def test_hidden_kvm_line_is_printable_and_in_range() -> None:
    from vmlab.kvmapi.rerun import RerunParams, hidden_line

    p = RerunParams()
    for i in range(50):
        line = hidden_line(hashlib.sha256(str(i).encode()).digest() * 4, p)
        assert line.endswith(b"\n") and p.min_length <= len(line) - 1 <= p.max_length
        assert all(32 <= b < 127 for b in line[:-1])
