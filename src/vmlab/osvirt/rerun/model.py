"""The os-virt re-run's data: the hidden values, the parameters they are drawn from, what one run of
the box gave, and which step each task's hidden checks belong to (shared by the runner and its judge)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from vmlab.osvirt import outside
from vmlab.osvirt.probes import FULL_UID_MAP

STEP_OF_TASK = {
    "t1-pid-uts": "isolation",
    "t2-mount": "isolation",
    "t3-user": "isolation",
    "t4-net": "isolation",
    "t5-cgroups": "limits",
    "t6-seccomp": "isolation",
    "t7-caps": "isolation",
}


class RerunParams(BaseModel):
    """lab.toml `[rerun] params`: the ranges the hidden values are drawn from, and how the box runs."""

    model_config = ConfigDict(extra="forbid")
    host_n: tuple[int, int] = (1000, 9999)
    deny: list[str] = Field(default_factory=lambda: ["chmod", "rmdir"], min_length=1)
    memory_mib: tuple[int, int] = (40, 160)
    pids_max: tuple[int, int] = (12, 48)
    box_timeout_s: float = Field(20.0, gt=0, le=120)
    python: str = "/usr/bin/python3"
    max_caps: int = 14


@dataclass
class Hidden:
    host_n: int
    deny: str
    memory_mib: int
    pids_max: int
    nonce: str
    iface: str
    outer_host: str
    file_name: str


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    view: outside.View | None
    jail_ns: dict[str, int]
    left: int
    reach: bool = False  # the hidden file, reachable from the probe shell (seen while it waited)
    timed_out: bool = False

    def answers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in self.stdout.splitlines():
            k, sep, v = line.partition("=")
            if sep and k.isidentifier():
                out[k] = v
        return out


def full_range(uid_map: list[list[int]]) -> bool:
    return any(len(r) == 3 and str(r[2]) == FULL_UID_MAP for r in uid_map)
