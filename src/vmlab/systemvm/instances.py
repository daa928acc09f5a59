"""Starting and removing the instances of the system-vm lab's part-3 experiments (devices, vcpus).

Whatever happens (a failed phase, Ctrl-C), what an experiment created is destroyed on the way out, and a
guest's domain log, which the device trace fills, is removed with it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vmlab.backends.base import Instance, InstanceSpec
from vmlab.errors import VmlabError

log = logging.getLogger("vmlab")


@contextlib.contextmanager
def started(backend: Any, spec: InstanceSpec, *, drop_log: bool = True) -> Iterator[Instance]:
    """Create, start and wait for ready; destroy on leaving. A destroy that fails (a daemon gone) is
    logged, never raised over the error that ended the run."""
    inst = backend.create(spec)
    resource = getattr(inst, "resource", "")
    try:
        inst.start()
        inst.wait_ready(spec.ready_timeout_s)
        yield inst
    finally:
        try:
            inst.destroy()
        except VmlabError as e:
            log.warning("cleanup: %s", e.one_line())
        finally:
            local = getattr(getattr(inst, "host", None), "sees_processes", False)
            if drop_log and getattr(inst, "kind", "") == "vm" and local:
                remove_domain_log(resource)


def domain_log(resource: str) -> Path | None:
    """Where libvirt keeps QEMU's stderr for this domain (system or session daemon), if it exists."""
    from vmlab.backends.libvirt.recovery import qemu_log

    return qemu_log(resource)


def remove_domain_log(resource: str) -> None:
    """The guest's domain log and its rotated copies: they hold this run's trace lines only."""
    path = domain_log(resource)
    if path is None:
        return
    for p in (path, *path.parent.glob(path.name + ".[0-9]")):
        with contextlib.suppress(OSError):
            p.unlink()
