"""ed25519 client keys for SSH to guests: per image (built in) and per run (added at boot)."""

from __future__ import annotations

import os
from pathlib import Path


def new_client_key(directory: Path, comment: str = "vmlab") -> str:
    """Write id_ed25519 (OpenSSH format, 0600 from creation on) and .pub; return the public line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    fd = os.open(directory / "id_ed25519", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    (directory / "id_ed25519.pub").write_text(f"{public} {comment}\n")
    return public
