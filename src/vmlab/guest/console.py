"""The serial console log that QEMU writes (<serial type='file'>): markers and the last lines."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

PANIC_RE = re.compile(r"Kernel panic - not syncing: [^\r\n]*")


class ConsoleLog:
    """Reads a growing log incrementally, so polling for a marker costs only the new bytes."""

    def __init__(self, path: Path, reader: Callable[[Path, int], bytes] | None = None) -> None:
        """`reader(path, offset)` returns the bytes from offset on (b"" while the file is missing);
        the default reads a local file, a remote libvirt host passes one that reads over SFTP."""
        self.path = path
        self._reader = reader or read_local
        self._offset = 0
        self._text = ""

    def read_new(self) -> str:
        data = self._reader(self.path, self._offset)
        self._offset += len(data)
        chunk = data.decode("utf-8", "replace")
        self._text += chunk
        return chunk

    @property
    def text(self) -> str:
        return self._text

    def find_marker(self, marker: str) -> float | None:
        """The guest uptime (s) carried by `MARKER uptime=1.23`, once it appears; else None."""
        self.read_new()
        m = re.search(re.escape(marker) + r" uptime=([0-9.]+)", self._text)
        return float(m.group(1)) if m else None

    def panic(self) -> str | None:
        self.read_new()
        m = PANIC_RE.search(self._text)
        return m.group(0).strip() if m else None

    def tail(self, lines: int = 20) -> list[str]:
        self.read_new()
        clean = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self._text).replace("\r", "")
        return [ln for ln in clean.splitlines() if ln.strip()][-lines:]


def read_local(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""
