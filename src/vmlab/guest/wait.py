"""Waiting without busy loops: every wait has a deadline, backs off, and can give up early.

`abort` lets a wait stop as soon as waiting is pointless (QEMU exited, the kernel panicked) instead of
sitting out the whole timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from vmlab.errors import BackendError, ReadyTimeout

T = TypeVar("T")


def wait_for(
    check: Callable[[], T | None],
    *,
    deadline: float,
    stage: str,
    abort: Callable[[], str | None] | None = None,
    first_delay: float = 0.005,
    max_delay: float = 0.1,
    hint: str = "",
) -> T:
    """Call `check` until it returns a value (not None); ReadyTimeout at `deadline` (time.monotonic)."""
    delay = first_delay
    while True:
        value = check()
        if value is not None:
            return value
        if abort is not None:
            reason = abort()
            if reason:
                raise BackendError(f"{stage}: {reason}", hint=hint or None)
        now = time.monotonic()
        if now >= deadline:
            raise ReadyTimeout(f"{stage} not reached before the timeout", hint=hint or None)
        time.sleep(min(delay, max(0.0, deadline - now)))
        delay = min(delay * 1.5, max_delay)
