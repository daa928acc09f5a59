"""Which libvirt URI vmlab uses when none is given: kept importable here for older callers; the choice
and the probe behind it live in `vmlab.host.libvirt`, below the runtimes, where the doctor reads them."""

from __future__ import annotations

from vmlab.host.libvirt import (
    LOCAL,
    SESSION,
    SYSTEM,
    Opener,
    UriChoice,
    choose,
    decide,
    default_uri,
    local_uris,
    try_open,
)

__all__ = [
    "LOCAL",
    "SESSION",
    "SYSTEM",
    "Opener",
    "UriChoice",
    "choose",
    "decide",
    "default_uri",
    "local_uris",
    "try_open",
]
