"""Switching KSM on for one experiment and putting the host's settings back exactly, whatever happens.

KSM is host-wide: other programs (and other vmlab runs) live with whatever this leaves behind. So
`ksm_session()` saves every tunable it writes, to memory and to a file, before writing any; on leaving
it unmerges what it merged (`run=2`) when KSM was off before, then restores each tunable. Ctrl-C
(SIGINT) and SIGTERM raise inside the block, so the restore runs; a second signal during the restore is
held until it is done (signals.deferred_interrupts). A run killed outright (SIGKILL) leaves the saved
file: the next session restores it first. One session at a time per host (a lock file).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from vmlab.backends.ports import flock
from vmlab.backends.signals import deferred_interrupts
from vmlab.errors import BackendError, NotAvailable, UsageError
from vmlab.systemvm.hostmem import KSM_DIR, KSM_TUNABLES, read_ksm

log = logging.getLogger("vmlab")

LOCK = Path(tempfile.gettempdir()) / "vmlab-ksm.lock"
SAVED = Path(tempfile.gettempdir()) / "vmlab-ksm-saved.json"
UNMERGE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class KsmPace:
    """What the session writes: ksmd's pace and whether zero pages go to the kernel's zero page."""

    pages_to_scan: int = 1000
    sleep_millisecs: int = 20
    use_zero_pages: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.pages_to_scan <= 100_000 or not 0 <= self.sleep_millisecs <= 10_000:
            raise UsageError(
                f"KSM pace pages_to_scan={self.pages_to_scan}, sleep_millisecs={self.sleep_millisecs}",
                hint="pages_to_scan 1..100000, sleep_millisecs 0..10000",
            )


def snapshot(directory: Path = KSM_DIR) -> dict[str, int]:
    """The tunables a session writes, as they are now (the ones this kernel has)."""
    values = read_ksm(directory)
    return {k: values[k] for k in KSM_TUNABLES if k in values}


def _write(directory: Path, name: str, value: int) -> None:
    (directory / name).write_text(f"{value}\n")


def restore(saved: dict[str, int], directory: Path = KSM_DIR) -> None:
    """Back to `saved`: unmerge first when KSM was not running (run=2 waits until every merged page is
    a private copy again), then the pace, then `run` itself."""
    if saved.get("run", 0) != 1:
        _write(directory, "run", 2)
        deadline = time.monotonic() + UNMERGE_TIMEOUT_S
        while read_ksm(directory).get("pages_shared", 0) and time.monotonic() < deadline:
            time.sleep(0.05)
    for name in KSM_TUNABLES:
        if name in saved and name != "run":
            with contextlib.suppress(OSError):  # use_zero_pages refuses changes on a few kernels
                _write(directory, name, saved[name])
    if "run" in saved:
        _write(directory, "run", saved["run"])


def check_writable(directory: Path = KSM_DIR) -> None:
    """NotAvailable unless this kernel has KSM and this user may change its settings."""
    if not (directory / "run").exists():
        raise NotAvailable(
            "this kernel has no KSM (no /sys/kernel/mm/ksm)", hint="a kernel built with CONFIG_KSM=y"
        )
    if not os.access(directory / "run", os.W_OK):
        raise NotAvailable(
            "KSM's settings are host-wide and only root may change them", hint="run the ksm task as root"
        )


class Terminated(KeyboardInterrupt):
    """SIGTERM inside a KSM session: raised like Ctrl-C so every cleanup runs."""


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM raises (SIGINT does already) while the block runs, in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def term(_signum: int, _frame: FrameType | None) -> None:
        raise Terminated()

    old = signal.signal(signal.SIGTERM, term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def ksm_session(
    pace: KsmPace,
    directory: Path = KSM_DIR,
    saved_file: Path = SAVED,
    lock: Path = LOCK,
    on_change: Callable[[str], None] = log.info,
) -> Iterator[dict[str, int]]:
    """KSM running at `pace` inside the block; yields the settings found (what is restored)."""
    check_writable(directory)
    with flock(lock), _signals_raise():
        if saved_file.exists():  # a session killed outright left the host's settings there
            try:
                stale = {k: int(v) for k, v in json.loads(saved_file.read_text()).items()}
            except (OSError, ValueError, AttributeError) as e:
                raise BackendError(
                    f"{saved_file} holds KSM settings a killed run saved, unreadable: {e}",
                    hint=f"check /sys/kernel/mm/ksm by hand, then remove {saved_file}",
                ) from e
            on_change(f"restoring the KSM settings a killed run left changed: {stale}")
            with deferred_interrupts():
                restore(stale, directory)
                saved_file.unlink()
        saved = snapshot(directory)
        with deferred_interrupts():  # saved on disk before anything changes
            saved_file.write_text(json.dumps(saved))
        try:
            on_change(
                f"KSM on: pages_to_scan={pace.pages_to_scan} sleep_millisecs={pace.sleep_millisecs} "
                f"(host's settings saved: {saved})"
            )
            if "use_zero_pages" in saved:
                with contextlib.suppress(OSError):
                    _write(directory, "use_zero_pages", pace.use_zero_pages)
            _write(directory, "pages_to_scan", pace.pages_to_scan)
            _write(directory, "sleep_millisecs", pace.sleep_millisecs)
            _write(directory, "run", 1)
            yield saved
        finally:
            with deferred_interrupts():
                restore(saved, directory)
                saved_file.unlink(missing_ok=True)
                on_change(f"KSM settings restored: {snapshot(directory)}")


def pause(directory: Path = KSM_DIR) -> None:
    """Stop ksmd and keep what it merged (run=0), so the counters and each process's figures read next
    describe one state; only inside a session, whose exit restores the host's `run`."""
    _write(directory, "run", 0)


def wait_full_scans(
    scans: int,
    timeout_s: float,
    directory: Path = KSM_DIR,
    poll_s: float = 0.1,
    progress: Callable[[str], None] = log.info,
    on_poll: Callable[[dict[str, int]], None] | None = None,
) -> tuple[int, float]:
    """Wait until ksmd has finished `scans` more full scans (bounded): (scans seen, seconds taken).

    The first scan only records each page's checksum (a page must look the same twice to be merged),
    so merging shows up from the second on."""
    t0 = time.monotonic()
    start = read_ksm(directory).get("full_scans", 0)
    seen = 0
    last_said = -1
    while time.monotonic() - t0 < timeout_s:
        now = read_ksm(directory)
        if on_poll is not None:
            on_poll(now)
        seen = now.get("full_scans", 0) - start
        if seen != last_said:
            progress(f"ksm: {seen}/{scans} full scans, pages_sharing {now.get('pages_sharing', 0)}")
            last_said = seen
        if seen >= scans:
            break
        time.sleep(poll_s)
    return seen, time.monotonic() - t0
