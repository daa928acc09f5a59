"""Where a QEMU process's memory goes, from its memory maps (the Firecracker method).

Guest RAM is one anonymous mapping of exactly the configured size; under TCG the translation-block code
buffer is another large anonymous mapping (~1 GiB virtual here). Everything else is QEMU itself:
the overhead a guest pays that a container does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmlab.backends.capabilities import MIB, MapEntry


@dataclass(frozen=True)
class QemuMemory:
    rss: int
    pss: int
    uss: int
    guest_ram_size: int
    guest_ram_rss: int  # guest RAM the guest has actually touched
    code_buffer_size: int
    code_buffer_rss: int  # TCG translation cache resident
    overhead_rss: int  # rss minus touched guest RAM: QEMU's own cost

    def as_values(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.__dict__.items()}


def account(maps: list[MapEntry], guest_mib: int, *, tcg: bool) -> QemuMemory:
    """Split a QEMU process's maps into guest RAM, TCG code buffer and QEMU's own overhead."""
    want = guest_mib * MIB
    anon = [m for m in maps if m.anonymous]
    # The guest RAM mapping has exactly the configured size (QEMU may round up by a page or two).
    ram = min((m for m in anon if want <= m.size <= want + 2 * MIB), key=lambda m: m.size, default=None)
    if ram is None:
        raise ValueError(f"no anonymous mapping of {guest_mib} MiB among {len(anon)} anonymous maps")
    code = None
    if tcg:
        others = [m for m in anon if m is not ram and m.size >= 64 * MIB]
        code = max(others, key=lambda m: m.size, default=None)
    rss = sum(m.rss for m in maps)
    return QemuMemory(
        rss=rss,
        pss=sum(m.pss for m in maps),
        uss=sum(m.private for m in maps),
        guest_ram_size=ram.size,
        guest_ram_rss=ram.rss,
        code_buffer_size=code.size if code else 0,
        code_buffer_rss=code.rss if code else 0,
        overhead_rss=rss - ram.rss,
    )
