"""The readiness ladders as data: stage names come from one table, `climb` stamps each stage in order,
and a stage that times out or is aborted names itself with its own hint."""

from __future__ import annotations

import time

import pytest

from vmlab.backends.base import CONTAINER_STAGES, VM_STAGES, InstanceBase
from vmlab.backends.readiness import CONTAINER_LADDER, VM_LADDER, Attempt, Stage, climb
from vmlab.errors import BackendError, ReadyTimeout


class Toy(InstanceBase):
    """A subject with real probes: the port opens on the third look, the event has its own time."""

    kind = "container"
    runtime = "toy"
    stages = ("create_called", "created", "event", "port", "told")

    def __init__(self) -> None:
        super().__init__("toy", "vmlab-r-toy")
        self.looks = 0
        self.ssh_port = 2222
        self.event_at = time.monotonic()

    def port(self) -> bool | None:
        self.looks += 1
        return True if self.looks >= 3 else None

    def event(self) -> float | None:
        return self.event_at

    def told(self, attempt: Attempt) -> str:
        return attempt.stage


LADDER: tuple[Stage[Toy], ...] = (
    Stage("event", "event", probe=Toy.event, stamp_is_value=True),
    Stage("port", "port {s.ssh_port}", "open it", probe=Toy.port, first_delay=0.001, max_delay=0.001),
    Stage("told", "told", wait=Toy.told),
)


def test_the_stage_tuples_come_from_the_tables() -> None:
    assert (
        VM_STAGES
        == VM_LADDER.names
        == (
            "create_called",
            "created",
            "process_running",
            "serial_marker",
            "ssh_port",
            "ssh_banner",
            "first_command",
        )
    )
    assert CONTAINER_STAGES == CONTAINER_LADDER.names == ("create_called", "created", "running", "first_exec")
    for ladder in (VM_LADDER, CONTAINER_LADDER):
        assert len(set(ladder.names)) == len(ladder.names)


def test_every_vm_stage_says_how_to_get_further() -> None:
    assert all("--timeout" in st.hint for st in VM_LADDER.ready)


def test_climb_stamps_each_stage_in_order_with_what_it_found() -> None:
    toy = Toy()
    toy.mark("created")
    toy.event_at = time.monotonic()  # the event happened before it is looked for
    found = climb(
        toy, LADDER, deadline=time.monotonic() + 30, abort=lambda: None, prefix="toy", stamp=toy.mark
    )
    assert tuple(toy.ladder) == toy.stages
    assert toy.ladder["event"] == toy.event_at  # the event's own time, not when it was seen
    assert list(toy.ladder.values()) == sorted(toy.ladder.values())
    assert found == {"event": toy.event_at, "port": True, "told": "toy: told"} and toy.looks == 3


def test_a_timeout_names_the_stage_with_its_hint() -> None:
    toy = Toy()
    toy.looks = -(10**9)  # the port never opens
    with pytest.raises(ReadyTimeout, match=r"toy: port 2222 not reached") as info:
        climb(toy, LADDER, deadline=time.monotonic(), abort=lambda: None, prefix="toy", stamp=toy.mark)
    assert info.value.hint == "open it" and "port" not in toy.ladder and "event" in toy.ladder


def test_an_abort_stops_the_climb_at_once() -> None:
    toy = Toy()
    toy.looks = -(10**9)
    with pytest.raises(BackendError, match=r"toy: port 2222: it stopped"):
        climb(
            toy,
            LADDER,
            deadline=time.monotonic() + 600,
            abort=lambda: "it stopped",
            prefix="toy",
            stamp=toy.mark,
        )


def test_only_a_stage_of_the_table_can_be_stamped() -> None:
    with pytest.raises(ValueError, match="not a stage"):
        Toy().mark("serial_marker")


def test_a_stage_has_exactly_one_way_to_wait() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Stage("x", "x")


class ToyContainer(InstanceBase):
    """ContainerSteps by a plain class: the table must reach these methods, not the protocol's."""

    kind = "container"
    runtime = "toy"
    stages = CONTAINER_STAGES

    def __init__(self) -> None:
        super().__init__("toyc", "vmlab-r-toyc")
        self.at = time.monotonic()

    def start_event(self) -> float | None:
        return self.at

    def first_exec_ok(self) -> bool | None:
        return True


def test_the_container_table_calls_the_instance() -> None:
    c = ToyContainer()
    c.mark("created")
    c.at = time.monotonic()
    climb(c, CONTAINER_LADDER.ready, deadline=time.monotonic(), abort=lambda: None, prefix="c", stamp=c.mark)
    assert tuple(c.ladder) == CONTAINER_STAGES and c.ladder["running"] == c.at
