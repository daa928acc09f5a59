"""The one error family of vmlab.

Library code raises these; only the CLI turns them into one line on stderr and an exit code.
Each error names what failed and, where we know it, the command or change that fixes it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

PARTIAL_REPORT = "partial report: "  # a hint that is no fix: where the report measured so far is


class VmlabError(Exception):
    """Root of every error vmlab raises on purpose.

    `partial_report` is where the report measured before the error was kept: the CLI prints it on a
    line of its own, so the one line of the error holds one problem and one fix. A hint written as
    "partial report: PATH" (as callers did before) is taken as that path, not as a fix.
    """

    exit_code = 1

    def __init__(
        self, message: str, *, hint: str | None = None, partial_report: str | os.PathLike[str] | None = None
    ) -> None:
        super().__init__(message)
        if hint is not None and hint.startswith(PARTIAL_REPORT) and partial_report is None:
            partial_report, hint = hint[len(PARTIAL_REPORT) :], None
        self.message = message
        self.hint = hint
        self.partial_report = str(partial_report) if partial_report is not None else None

    def one_line(self) -> str:
        """The message and its fix on one line, as the CLI prints it."""
        return f"{self.message} (fix: {self.hint})" if self.hint else self.message


class UsageError(VmlabError):
    """Bad input from the user: an option, a file, a name."""

    exit_code = 2


class ReportError(UsageError):
    """A report file that is not JSON, has the wrong schema version or misses fields."""


class LabError(UsageError):
    """A lab that does not exist or a lab.toml that is malformed."""


_WRITE_ERRNOS = tuple(
    c for c in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EROFS, errno.EACCES, errno.EPERM) if c
)


def space(folder: Path, needed: int | None) -> str:
    """ "N bytes needed, M free" for the file system holding `folder` (its nearest existing parent):
    what the user must free. Free is what an unprivileged writer may use (f_bavail)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        st = os.statvfs(probe)
        free = f"{st.f_bavail * st.f_frsize:,} bytes free"
    except OSError:
        free = "free space unknown"
    if needed is None:
        return free
    return f"{needed:,} bytes needed, {free.replace(' bytes free', ' free')}"


class OutputError(UsageError):
    """A file or folder vmlab must write cannot be written: a full disk, a read-only or foreign folder.

    Exit 2 like other bad input: the fix is the user's (free space, or write elsewhere), never a retry.
    """

    @classmethod
    def from_os(
        cls,
        e: OSError,
        path: str | os.PathLike[str],
        *,
        elsewhere: str = "write elsewhere with -o",
        needed: int | None = None,
    ) -> OutputError:
        """Name the path that was meant (not a temp file), what failed and the fix for that errno; a
        full disk or quota says how many bytes the write needed (where the writer knew) and how many
        are free now (the failed write's temp file already removed)."""
        where = Path(path)
        folder = where if where.is_dir() else where.parent
        why = e.strerror or str(e)
        code = e.errno
        if code is None and e.args and isinstance(e.args[0], list) and e.args[0]:
            # shutil.copytree gathers its faults as (src, dst, why) and loses the errno: find it again
            why = str(e.args[0][0][-1])
            code = next((c for c in _WRITE_ERRNOS if os.strerror(c) in why), None)
        if code == errno.ENOSPC:
            return cls(
                f"cannot write {where}: the disk holding {folder} is full ({space(folder, needed)})",
                hint=f"free space or {elsewhere}",
            )
        if code == getattr(errno, "EDQUOT", -1):
            return cls(
                f"cannot write {where}: your disk quota on {folder} is used up ({space(folder, needed)})",
                hint=f"free space or {elsewhere}",
            )
        if code == errno.EROFS:
            return cls(f"cannot write {where}: {folder} is on a read-only file system", hint=elsewhere)
        if code in (errno.EACCES, errno.EPERM):
            return cls(
                f"cannot write {where}: permission denied", hint=f"{elsewhere}, or make {folder} writable"
            )
        return cls(f"cannot write {where}: {why}", hint=elsewhere)


class NotAvailable(VmlabError):
    """A capability this host lacks (no /dev/kvm, daemon down, tool missing)."""

    exit_code = 3


class BackendError(VmlabError):
    """libvirt, Docker or QEMU refused or failed an operation."""

    exit_code = 4


class PartialFailure(BackendError):
    """A step failed part-way; `partial` holds the experiments it measured before (kept in the report)."""

    partial: dict[str, object]

    def __init__(self, message: str, *, hint: str | None = None, partial: dict[str, object] | None = None):
        super().__init__(message, hint=hint)
        self.partial = dict(partial or {})


class ReadyTimeout(BackendError):
    """A guest or container did not reach the next readiness stage in time."""

    exit_code = 5
