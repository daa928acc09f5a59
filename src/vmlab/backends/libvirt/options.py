"""The libvirt runtime's own options (what no other runtime reads): text appended to the image's kernel
command line, the guest firmware by name (None: the image's choice), and a virtio balloon device
(libvirt's setMemory then shrinks and grows the running guest; without one the domain has none)."""

from __future__ import annotations

from dataclasses import dataclass

from vmlab.errors import UsageError
from vmlab.images.firmware import FIRMWARE_NAMES


@dataclass(frozen=True)
class LibvirtOptions:
    kernel_args: str = ""
    firmware: str | None = None
    balloon: bool = False

    def __post_init__(self) -> None:
        if self.firmware is not None and self.firmware not in FIRMWARE_NAMES:
            raise UsageError(
                f"unknown firmware {self.firmware!r}", hint=f"--firmware {' or '.join(FIRMWARE_NAMES)}"
            )
