"""A wall-time limit for one engine run, so a hand-made program that never halts ends with an error.

A program with SETL inside a loop body can reset L forever; no engine can know that in advance. The
limit is a SIGALRM in the main thread: it interrupts Python-level engines between bytecodes. (The
`x86` engine runs native code through ctypes, where the signal waits until the call returns.)
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from vmlab.errors import UsageError


class NoHalt(UsageError):
    """The program did not reach HALT within the limit."""


@contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise NoHalt(
            f"{what}: no HALT within {seconds:g} s (an endless loop? a SETL inside a loop body resets L)",
            hint="fix the program, or raise the limit with --timeout",
        )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
