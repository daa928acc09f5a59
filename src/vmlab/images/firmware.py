"""Guest firmware by name: where distributions install each ROM. An image recipe names its firmware,
so the name list belongs to the images; the domain XML only turns a resolved ROM into <loader>."""

from __future__ import annotations

from pathlib import Path

# Firmware by name -> where distributions install it (first existing path wins).
FIRMWARE_PATHS: dict[str, tuple[str, ...]] = {
    "qboot": ("/usr/share/qemu/qboot.rom", "/usr/share/qboot/bios.bin", "/usr/share/qemu/bios-microvm.bin"),
}
FIRMWARE_NAMES = ("seabios", *FIRMWARE_PATHS)


def resolve_firmware(name: str) -> tuple[Path | None, str]:
    """(ROM for <loader>, what was used) for a firmware name; "" or "seabios" mean QEMU's default.

    A missing qboot ROM is not an error: the guest boots with SeaBIOS, only slower, and the
    returned description says so (it goes into the instance metadata and the report).
    """
    if name in ("", "seabios"):
        return None, "seabios (QEMU default)"
    candidates = FIRMWARE_PATHS.get(name)
    if candidates is None:
        raise ValueError(f"unknown firmware {name!r} (known: {', '.join(FIRMWARE_NAMES)})")
    for c in candidates:
        if Path(c).is_file():
            return Path(c), f"{name} ({c})"
    return None, f"seabios (QEMU default; no {name} ROM in {', '.join(candidates)})"
