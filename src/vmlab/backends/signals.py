"""Ctrl-C must never land between "libvirt/Docker created X" and "vmlab recorded X".

Inside `deferred_interrupts()` SIGINT is noted and re-raised as KeyboardInterrupt at the end of the
block, so resource creation and its bookkeeping are atomic with respect to Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    old = signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if received:
            raise KeyboardInterrupt
