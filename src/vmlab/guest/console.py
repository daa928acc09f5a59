"""The serial console log that QEMU writes (<serial type='file'>): markers and the last lines."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from vmlab.errors import BackendError, ReadyTimeout

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
        self._scan_from = 0  # the marker search resumes here (minus a marker's length) on new text

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
        """The guest uptime (s) carried by `MARKER uptime=1.23`, once its line is complete; else None."""
        self.read_new()
        pattern = re.compile(re.escape(marker) + r" uptime=([0-9.]+)\s")
        m = pattern.search(self._text, max(0, self._scan_from - len(marker) - 32))
        self._scan_from = len(self._text)
        return float(m.group(1)) if m else None

    def wait_marker(
        self,
        marker: str,
        *,
        deadline: float,
        stage: str,
        abort: Callable[[], str | None],
        hint: str = "",
        abort_every_s: float = 0.1,
    ) -> float:
        """Block until the marker's line is in the log; returns the guest uptime it carries.

        Event-driven for a local log (inotify on its folder: the caller stamps within a millisecond
        of the write), polled every 5 ms otherwise. `abort` (is QEMU still alive?) costs a daemon
        round trip, so it runs every `abort_every_s` only.
        """
        from vmlab.guest.watch import FolderWatch

        watch = FolderWatch.open(self.path.parent) if self._reader is read_local else None
        next_abort = 0.0
        try:
            while True:
                found = self.find_marker(marker)
                if found is not None:
                    return found
                now = time.monotonic()
                if now >= next_abort:
                    reason = abort()
                    if reason:
                        raise BackendError(f"{stage}: {reason}", hint=hint or None)
                    next_abort = now + abort_every_s
                if now >= deadline:
                    raise ReadyTimeout(f"{stage} not reached before the timeout", hint=hint or None)
                wait = min(abort_every_s, max(0.0, deadline - now))
                if watch is None or watch.fd is None:
                    time.sleep(min(0.005, wait))
                else:
                    watch.wait(wait)
        finally:
            if watch is not None:
                watch.close()

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
