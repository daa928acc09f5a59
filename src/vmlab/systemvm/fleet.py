"""K instances of one runtime started at the same instant, and all of them destroyed afterwards.

One thread per instance opens its own runtime connection, then all wait at a barrier; its release is
the common launch instant, and each instance's readiness stamps (its ladder, time.monotonic() in this
process) measured from it are the ready latencies under concurrency. Leaving the `with` block
destroys every instance, also after an error or Ctrl-C: each slot's create/start runs under the slot's
lock, so cleanup never races a half-made instance (it waits for the call, then destroys what it made),
and a worker that sees the cancel flag makes nothing more. `left_behind()` asks the runtimes
afterwards, by run id, so a leak is a number in the report, not a guess.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from vmlab.backends.base import Backend, Instance, InstanceSpec
from vmlab.backends.context import RunContext
from vmlab.backends.signals import deferred_interrupts
from vmlab.errors import BackendError, VmlabError

log = logging.getLogger("vmlab")
Progress = Callable[[str], None]
LOCK_WAIT_S = 180.0  # cleanup waits this long for a create/start in flight (libvirt's own bound)


@dataclass
class Slot:
    spec: InstanceSpec
    lock: threading.Lock = field(default_factory=threading.Lock)
    backend: Backend | None = None
    inst: Instance | None = None
    error: BaseException | None = None
    ready_at: float | None = None


class Fleet:
    """Instances of `runtime` for `specs`, started together by `launch()`; destroyed on leaving."""

    def __init__(
        self, runtime: str, ctx: RunContext, specs: Sequence[InstanceSpec], progress: Progress = log.info
    ) -> None:
        self.runtime, self.ctx, self.progress = runtime, ctx, progress
        self.slots = [Slot(s) for s in specs]
        self.cancel = threading.Event()
        self.barrier = threading.Barrier(len(self.slots) + 1)
        self.launched_at: float | None = None
        self._threads: list[threading.Thread] = []
        self._left = -1

    # --- start ----------------------------------------------------------------------------------

    def launch(self, timeout_s: float) -> list[Instance]:
        """Start all at once and wait until every one is ready (or one fails: BackendError, the
        others are destroyed on leaving the block). Returns the instances in spec order."""
        for slot in self.slots:
            t = threading.Thread(target=self._work, args=(slot,), daemon=True, name=f"fleet-{slot.spec.name}")
            t.start()
            self._threads.append(t)
        # every worker has opened its runtime (broken: one could not, its error is in its slot)
        with contextlib.suppress(threading.BrokenBarrierError):
            self.barrier.wait(timeout=120)
        self.launched_at = time.monotonic()
        deadline = self.launched_at + timeout_s
        # the first failure ends the wait: leaving the block destroys the others, half-made or not
        while time.monotonic() < deadline and any(t.is_alive() for t in self._threads):
            if any(s.error is not None for s in self.slots):
                break
            time.sleep(0.05)
        failed = [s for s in self.slots if s.error is not None]
        if failed:
            e = failed[0].error
            if isinstance(e, VmlabError):
                raise e
            raise BackendError(f"{self.runtime} {failed[0].spec.name}: {e}") from e
        late = [s.spec.name for s in self.slots if s.ready_at is None]
        if late:
            raise BackendError(
                f"{self.runtime}: {', '.join(late)} not ready {timeout_s:g} s after the launch",
                hint="fewer instances at once (a smaller K), or a longer ready_timeout_s",
            )
        return [s.inst for s in self.slots if s.inst is not None]

    def _work(self, slot: Slot) -> None:
        from vmlab.backends import open_runtime

        try:
            slot.backend = open_runtime(self.runtime, self.ctx)
        except BaseException as e:  # said by launch(); the barrier lets the others go on
            slot.error = e
            self.barrier.abort()
            return
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            return  # another worker failed to open its runtime, or the launch was called off
        try:
            with slot.lock:
                if self.cancel.is_set():
                    return
                slot.inst = slot.backend.create(slot.spec)
                slot.inst.start()
            slot.inst.wait_ready(slot.spec.ready_timeout_s)
            slot.ready_at = time.monotonic()
        except BaseException as e:
            if not self.cancel.is_set():
                slot.error = e

    # --- what it measured -----------------------------------------------------------------------

    def ready_latencies(self) -> list[float]:
        """Seconds from the common launch instant to each instance's last readiness stamp."""
        t0 = self.launched_at or 0.0
        out = []
        for s in self.slots:
            if s.inst is not None and s.inst.ladder:
                out.append(max(s.inst.ladder.values()) - t0)
        return out

    def ladders(self) -> list[dict[str, float]]:
        """Each instance's stamps, relative to the common launch instant."""
        t0 = self.launched_at or 0.0
        return [{k: v - t0 for k, v in s.inst.ladder.items()} for s in self.slots if s.inst is not None]

    # --- teardown -------------------------------------------------------------------------------

    def destroy_all(self) -> list[str]:
        """Destroy every instance (waiting for a create/start in flight); the errors, one line each."""
        self.cancel.set()
        self.barrier.abort()
        problems: list[str] = []
        for slot in self.slots:
            got = slot.lock.acquire(timeout=LOCK_WAIT_S)
            try:
                if slot.inst is not None:
                    slot.inst.destroy()
            except VmlabError as e:
                problems.append(e.one_line())
            finally:
                if got:
                    slot.lock.release()
        for t in self._threads:  # wait_ready of a destroyed instance ends within a poll
            t.join(30)
        for slot in self.slots:  # a worker that was still creating when the first pass came by
            if slot.inst is not None:
                try:
                    slot.inst.destroy()
                except VmlabError as e:
                    problems.append(e.one_line())
        return problems

    def left_behind(self) -> int:
        """What the runtime still listed of these instances once they were destroyed (leaving the
        block asks it; -1 when it could not be asked)."""
        return self._left

    def _count_left(self) -> int:
        """How many instances of these specs' run ids the runtime still lists (0: nothing leaked)."""
        runs = {s.spec.run_id for s in self.slots}
        names = {s.spec.name for s in self.slots}
        backend = next((s.backend for s in self.slots if s.backend is not None), None)
        if backend is None:
            return 0
        return sum(1 for r in backend.list_owned() if r.run_id in runs and r.name in names)

    def close(self) -> None:
        for slot in self.slots:
            if slot.backend is not None:
                with contextlib.suppress(Exception):  # closing must not mask the run's error
                    slot.backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            with deferred_interrupts():
                for line in self.destroy_all():
                    log.warning("cleanup: %s", line)
            try:
                self._left = self._count_left()
            except VmlabError as e:
                log.warning("cleanup: could not list what is left: %s", e.one_line())
        finally:
            self.close()


def percentile(xs: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default,
    "linear"): rank (n-1)*q/100. With one sample every percentile is that sample."""
    if not xs:
        raise ValueError("percentile of no samples")
    s = sorted(xs)
    r = (len(s) - 1) * q / 100.0
    lo = int(r)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (r - lo)


def instance_pids(inst: Instance) -> list[int]:
    """The host processes that are this instance: QEMU; a container's shim, init and its children;
    a sandbox's shim, Sentry and Gofer (what the runtime's memory capability names, plus the tree)."""
    import psutil

    pids: list[int] = []
    with contextlib.suppress(VmlabError):
        pids += [p.pid for p in inst.memory().processes]
    main = inst.pid()
    if main is not None:
        pids.append(main)
        with contextlib.suppress(psutil.Error):
            pids += [c.pid for c in psutil.Process(main).children(recursive=True)]
    return sorted(set(pids))
