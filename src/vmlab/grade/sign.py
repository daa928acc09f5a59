"""Signatures of reports a runner produced itself: HMAC-SHA256 over canonical JSON.

What a valid signature proves: the report, byte for byte in its canonical form (and through the sha256
it lists, every artifact), was signed by a holder of the key, i.e. by the tutors' runner that produced
it. What it does not prove: that a student's own machine measured anything (a student cannot hold the
key, so their hand-ins are unsigned), that the code is the student's own work, or that the numbers are
physically right. docs/grading.md says this to tutors.

The signature lives in a top-level `signature` block that is not part of the signed content; `checks` and
`grade` are left out too, since grading rewrites them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from vmlab.errors import UsageError

ALG = "hmac-sha256"
UNSIGNED = ("signature", "checks", "grade")
MIN_KEY_BYTES = 16


def canonical(raw: dict[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same report always gives the same bytes."""
    body = {k: v for k, v in raw.items() if k not in UNSIGNED}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def read_key(path: Path) -> bytes:
    """The key file's bytes (surrounding whitespace stripped); it must be private to its owner (0600)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UsageError(f"key file {path} does not exist", hint="vmlab grade keygen KEYFILE") from None
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"key file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise UsageError(
            f"key file {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o})",
            hint=f"chmod 600 {path}",
        )
    key = path.read_bytes().strip()
    if len(key) < MIN_KEY_BYTES:
        raise UsageError(
            f"key file {path} holds {len(key)} bytes, fewer than {MIN_KEY_BYTES}",
            hint="vmlab grade keygen KEYFILE writes a random key",
        )
    return key


def write_key(path: Path) -> Path:
    """A new random key (64 hex digits), created 0600; never overwrites an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path


def key_id(key: bytes) -> str:
    """Names the key without revealing it, so a tutor sees which runner key signed a report."""
    return hashlib.sha256(b"vmlab key id\0" + key).hexdigest()[:16]


def signature(raw: dict[str, Any], key: bytes) -> dict[str, str]:
    return {
        "alg": ALG,
        "key_id": key_id(key),
        "value": hmac.new(key, canonical(raw), hashlib.sha256).hexdigest(),
        "signed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def verify(raw: dict[str, Any], key: bytes) -> tuple[bool, str]:
    """(valid, why not); a missing block, another algorithm or key, or a changed byte is invalid."""
    block = raw.get("signature")
    if not isinstance(block, dict):
        return False, "the report is not signed"
    if block.get("alg") != ALG:
        return False, f"unknown signature algorithm {block.get('alg')!r}"
    if block.get("key_id") != key_id(key):
        return False, "signed with another key"
    want = hmac.new(key, canonical(raw), hashlib.sha256).hexdigest()
    value = block.get("value")
    if not isinstance(value, str) or not hmac.compare_digest(want, value):
        return False, "the signature does not match the report's content"
    return True, ""


def sign_file(path: Path, key: bytes) -> dict[str, str]:
    """Add (or replace) the signature block of a report file, written atomically."""
    import tempfile

    from vmlab.report.io import read_json

    raw = read_json(path)  # bounded in size and depth: one line for a file that is no report
    if not isinstance(raw, dict):
        raise UsageError(f"report {path} is not a JSON object")
    raw["signature"] = signature(raw, key)
    fd, tmp = tempfile.mkstemp(prefix=".signed-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(raw, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dict(raw["signature"])
