"""One typed run context: which libvirt URI, which runtime, which accelerator.

`compare`, `lab run` and the lifecycle commands build one from their options (`-c/--connect`,
`--runtime`, `--accel`) and a lab run hands it to every step as `ctx.run`. An accelerator name is
checked once where it enters: `parse_accel` for a CLI string, the `Accel` type of a pydantic field for
lab.toml and `--set`; downstream it is an `Accel` and never checked again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

from vmlab.errors import UsageError

Accel = Literal["auto", "kvm", "tcg"]
ACCELS: tuple[str, ...] = get_args(Accel)


def parse_accel(value: str) -> Accel:
    """An accelerator name typed on the command line, checked (a step parameter typed `Accel` is
    checked by pydantic against the same names); everything downstream takes an `Accel`."""
    if value not in ACCELS:
        raise UsageError(f"unknown accel {value!r}", hint="--accel auto, kvm or tcg")
    return cast(Accel, value)


@dataclass(frozen=True)
class RunContext:
    """Run-wide choices every runtime may read: `uri` (libvirt; None: host/libvirt.py's choice),
    `runtimes` (kind -> runtime name, overriding the kind's default) and `accel`."""

    uri: str | None = None
    runtimes: Mapping[str, str] = field(default_factory=dict)
    accel: Accel = "auto"

    @classmethod
    def build(
        cls, uri: str | None = None, runtimes: list[str] | tuple[str, ...] = (), accel: Accel = "auto"
    ) -> RunContext:
        """From CLI-shaped values; each runtime name must exist, and one per kind."""
        from vmlab.runtime_registry import runtime_kind

        chosen: dict[str, str] = {}
        for name in runtimes:
            kind = runtime_kind(name)
            if kind in chosen and chosen[kind] != name:
                raise UsageError(
                    f"--runtime {chosen[kind]} and --runtime {name} are both {kind} runtimes",
                    hint="give one runtime per kind",
                )
            chosen[kind] = name
        return cls(uri=uri or None, runtimes=chosen, accel=accel)

    def runtime_for(self, kind: str) -> str:
        from vmlab.runtime_registry import default_runtime

        return self.runtimes.get(kind) or default_runtime(kind)
