"""One result type for every command run anywhere (SSH in a guest, docker exec), so experiments never
care where a command ran. It lives with the guest helpers, below the runtimes that return it."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

from vmlab.errors import BackendError, UsageError


@dataclass(frozen=True)
class ExecResult:
    """One command run anywhere (SSH or docker exec), in one shape."""

    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def check(self) -> Self:
        if not self.ok:
            tail = (self.stderr or self.stdout).strip().splitlines()[-1:] or [""]
            raise BackendError(f"command {shlex.join(self.argv)!r} exited {self.rc}: {tail[0][:200]}")
        return self


def as_argv(cmd: str | Sequence[str]) -> tuple[str, ...]:
    """A shell string runs under /bin/sh -c; a list runs as is."""
    if isinstance(cmd, str):
        return ("/bin/sh", "-c", cmd)
    if not cmd:
        raise UsageError("empty command", hint="vmlab exec NAME -- uname -r")
    return tuple(cmd)
