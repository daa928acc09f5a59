"""A wall-time limit for one engine run, so a hand-made program that never halts ends with an error.

A program with SETL inside a loop body can reset L forever; no engine can know that in advance. The
limit is vmlab.alarm's SIGALRM: it interrupts Python-level engines between bytecodes. (The `x86`
engine runs native code through ctypes, where the signal waits until the call returns.)
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from vmlab.alarm import time_limit
from vmlab.errors import UsageError


class NoHalt(UsageError):
    """The program did not reach HALT within the limit."""


def deadline(seconds: float, what: str) -> AbstractContextManager[None]:
    return time_limit(
        seconds,
        lambda: NoHalt(
            f"{what}: no HALT within {seconds:g} s (an endless loop? a SETL inside a loop body resets L)",
            hint="fix the program, or raise the limit with --timeout",
        ),
    )
