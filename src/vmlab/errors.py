"""The one error family of vmlab.

Library code raises these; only the CLI turns them into one line on stderr and an exit code.
Each error names what failed and, where we know it, the command or change that fixes it.
"""

from __future__ import annotations


class VmlabError(Exception):
    """Root of every error vmlab raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

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


class ChecksFailed(VmlabError):
    """The grader ran and at least one required check failed."""

    exit_code = 1
