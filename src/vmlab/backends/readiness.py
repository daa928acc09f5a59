"""The readiness ladders as data: per runtime kind, the stages in order, each with its probe and hint.

A stage's name is the key its time stamp gets in `Instance.ladder` (what `compare` and the reports show),
so this table is the one place a stage name is written; `climb` walks a ladder against one deadline,
stamping each stage the moment its probe succeeds. Stages before the ready ladder (`setup`) are stamped
by create and start themselves.

A probe is either polled (`probe`: one look, None while not there; polls back off from `first_delay`
to `max_delay`) or waits for an event itself (`wait`: the serial marker, woken by inotify within a
millisecond of QEMU's write). The probes are methods of a small protocol per kind, so the table needs
no runtime to be read (base.py derives the stage tuples from it). They are lambdas calling the
instance's method: a protocol's own method, taken unbound, would run the protocol's empty body.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from vmlab.guest.wait import wait_for

S = TypeVar("S")
Abort = Callable[[], str | None]


@dataclass(frozen=True)
class Attempt:
    """What a stage's own wait needs: when to give up, what to call the stage, when to stop early."""

    deadline: float
    stage: str
    abort: Abort
    hint: str


@dataclass(frozen=True)
class Stage(Generic[S]):
    name: str
    label: str  # for messages, formatted with the instance as `s` ("SSH port {s.ssh_port}")
    hint: str = ""
    probe: Callable[[S], object | None] | None = None
    wait: Callable[[S, Attempt], object] | None = None
    first_delay: float = 0.005
    max_delay: float = 0.1
    stamp_is_value: bool = False  # the probe returns the stage's own monotonic time (an event's)

    def __post_init__(self) -> None:
        if (self.probe is None) == (self.wait is None):
            raise ValueError(f"stage {self.name}: give exactly one of probe and wait")


@dataclass(frozen=True)
class Ladder(Generic[S]):
    setup: tuple[str, ...]  # stamped by create/start
    ready: tuple[Stage[S], ...] = field(default=())

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.setup, *(s.name for s in self.ready))


def climb(
    subject: S,
    ladder: Sequence[Stage[S]],
    *,
    deadline: float,
    abort: Abort,
    prefix: str,
    stamp: Callable[[str, float | None], object],
) -> dict[str, Any]:
    """Each stage in order until the deadline; returns what each probe found, by stage name.

    `stamp(name, t)` records a stage (t None: now). ReadyTimeout or BackendError (from `abort`) name
    the stage as "<prefix>: <label>" with that stage's hint."""
    found: dict[str, Any] = {}
    for st in ladder:
        what = f"{prefix}: {st.label.format(s=subject)}"
        if st.wait is not None:
            value = st.wait(subject, Attempt(deadline, what, abort, st.hint))
        else:
            probe = st.probe
            assert probe is not None  # __post_init__: one of the two

            def look(probe: Callable[[S], object | None] = probe) -> object | None:
                return probe(subject)

            value = wait_for(
                look,
                deadline=deadline,
                stage=what,
                abort=abort,
                first_delay=st.first_delay,
                max_delay=st.max_delay,
                hint=st.hint,
            )
        stamp(st.name, value if st.stamp_is_value and isinstance(value, float) else None)
        found[st.name] = value
    return found


# --- the tables ----------------------------------------------------------------------------------


class GuestSteps(Protocol):
    """What a full guest offers the ladder (LibvirtInstance)."""

    @property
    def ssh_port(self) -> int: ...

    def wait_serial_marker(self, attempt: Attempt) -> float: ...
    def ssh_port_open(self) -> bool | None: ...
    def ssh_banner_line(self) -> str | None: ...
    def first_command_ok(self) -> bool | None: ...


class ContainerSteps(Protocol):
    """What a container or sandbox offers the ladder (DockerInstance)."""

    def start_event(self) -> float | None: ...
    def first_exec_ok(self) -> bool | None: ...


_SLOW = "a slow host needs a longer --timeout"
VM_LADDER: Ladder[GuestSteps] = Ladder(
    setup=("create_called", "created", "process_running"),
    ready=(
        Stage(
            "serial_marker",
            "serial ready marker",
            f"{_SLOW} (a TCG boot takes seconds); see the console tail above",
            wait=lambda g, attempt: g.wait_serial_marker(attempt),
        ),
        Stage(
            "ssh_port",
            "SSH port {s.ssh_port}",
            f"{_SLOW}; see the console tail above (QEMU forwards the port, the guest's init starts sshd)",
            probe=lambda g: g.ssh_port_open(),
        ),
        Stage(
            "ssh_banner",
            "SSH banner",
            f"{_SLOW}; see the console tail above (the port answers but sshd does not greet yet)",
            probe=lambda g: g.ssh_banner_line(),
        ),
        Stage(
            "first_command",
            "first SSH command",
            f"{_SLOW}; see the console tail above (sshd greets but no command ran)",
            probe=lambda g: g.first_command_ok(),
            first_delay=0.1,
            max_delay=1.0,
        ),
    ),
)

CONTAINER_LADDER: Ladder[ContainerSteps] = Ladder(
    setup=("create_called", "created"),
    ready=(
        # stamped at the time of Docker's own `start` event, not when a poll noticed it
        Stage("running", "running", probe=lambda c: c.start_event(), stamp_is_value=True),
        Stage("first_exec", "first exec", probe=lambda c: c.first_exec_ok()),
    ),
)
