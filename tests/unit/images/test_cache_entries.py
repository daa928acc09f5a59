"""Cache entry verification and get_image's errors on hand-made entries (no build needed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from vmlab.errors import UsageError
from vmlab.images import get_image, verify_entry
from vmlab.images.model import Manifest


def _entry(home: Path, content: bytes = b"kernel") -> Path:
    digest = hashlib.sha256(b"inputs").hexdigest()
    entry = home / "images" / "tiny" / digest
    entry.mkdir(parents=True)
    (entry / "vmlinux").write_bytes(content)
    manifest = Manifest(
        name="tiny",
        digest=digest,
        created_at="2026-01-01T00:00:00+00:00",
        builder_version="t",
        inputs={},
        outputs={"vmlinux": hashlib.sha256(content).hexdigest()},
        sizes={"vmlinux": len(content)},
        kernel_release="6.1",
        kernel_package="linux-image-6.1=1",
        host_public_key="ssh-ed25519 AAAA",
        client_public_key="ssh-ed25519 BBBB",
        docker_tag=f"vmlab/tiny:{digest[:12]}",
        cmdline="console=ttyS0",
        min_memory_mib=128,
        default_memory_mib=256,
        ready_marker="VMLAB_READY",
        container_cmd=["/bin/sh"],
    )
    (entry / "manifest.json").write_text(manifest.model_dump_json())
    return entry


def test_sound_entry_verifies(vmlab_home: Path) -> None:
    entry = _entry(vmlab_home)
    assert verify_entry(entry)[1] == []
    info = get_image("tiny")
    assert info.path == entry and info.kernel == entry / "vmlinux" and info.min_memory_mib == 128


def test_flipped_bytes_are_found_by_full_but_not_quick_verification(vmlab_home: Path) -> None:
    entry = _entry(vmlab_home)
    (entry / "vmlinux").write_bytes(b"kernex")
    assert verify_entry(entry)[1] == ["vmlinux does not match its sha256 in the manifest"]
    assert verify_entry(entry, full=False)[1] == []
    with pytest.raises(UsageError, match="corrupted") as exc:
        get_image("tiny")
    assert exc.value.hint == "vmlab image build tiny"


def test_missing_output_and_manifest_are_reported(vmlab_home: Path) -> None:
    entry = _entry(vmlab_home)
    (entry / "vmlinux").unlink()
    assert verify_entry(entry, full=False)[1] == ["vmlinux is missing"]
    (entry / "manifest.json").write_text("{not json")
    manifest, problems = verify_entry(entry)
    assert manifest is None and "not a valid manifest" in problems[0]


def test_unbuilt_and_unknown_images(vmlab_home: Path) -> None:
    with pytest.raises(UsageError, match="not built") as exc:
        get_image("tiny")
    assert exc.value.hint == "vmlab image build tiny"
    with pytest.raises(UsageError, match="unknown image 'nope'"):
        get_image("nope")
