"""Guests under libvirt: the LibvirtBackend and the LibvirtInstance the rest of vmlab uses.

Split by concern: `adapter` speaks libvirt (open, probe, define, destroy; its errors translated in one
place), `host` says where the guest's port, console log and boot files are (this host or an ssh URI's),
`instance` is a running guest (climbing `readiness.VM_LADDER`), `measure` what is measured of it.

Every domain is persistent while it lives (so `down --all` finds it even after a crash) and carries a
vmlab <metadata> element with everything needed to reach it again from another process: run id, lab,
SSH port, pinned host key, client key path, console log path.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vmlab.backends.base import (
    InstanceSpec,
    Kind,
    Record,
    ensure_name_free,
    resource_name,
    runtime_options,
)
from vmlab.backends.context import RunContext
from vmlab.backends.libvirt import adapter as lv
from vmlab.backends.libvirt.domain_xml import DomainModel
from vmlab.backends.libvirt.host import LocalHost, SshHost, host_for
from vmlab.backends.libvirt.instance import RUNTIME, SSH_HOST, LibvirtInstance
from vmlab.backends.libvirt.options import LibvirtOptions
from vmlab.backends.libvirt.remote import RemoteHost
from vmlab.backends.signals import deferred_interrupts
from vmlab.errors import BackendError, NotAvailable, UsageError
from vmlab.host.libvirt import default_uri
from vmlab.images.model import ImageInfo
from vmlab.images.runfiles import per_run_initrd

log = logging.getLogger("vmlab")


def open_runtime(ctx: RunContext) -> LibvirtBackend:
    return LibvirtBackend(ctx.uri)


def listing_scopes(uri: str | None) -> list[RunContext]:
    """Where `ls` and `down` look for guests: `uri` alone when given, else every local URI that may
    hold one (the default URI first, then qemu:///system and qemu:///session)."""
    from vmlab.host.libvirt import local_uris

    first = uri or default_uri()
    return [RunContext(uri=u) for u in ([uri] if uri else local_uris(first))]


class LibvirtBackend:
    kind: Kind = "vm"
    runtime = RUNTIME

    def __init__(self, uri: str | None = None) -> None:
        self.uri = uri or default_uri()
        # first: a bad keyfile= in an ssh URI is the user's error, not libvirt's
        self.host: LocalHost = host_for(self.uri)
        self.conn = lv.open_connection(self.uri)
        self._created: list[LibvirtInstance] = []

    @property
    def remote(self) -> RemoteHost | None:
        """The SSH connection to a remote libvirt host (None when libvirt runs here)."""
        return self.host.remote if isinstance(self.host, SshHost) else None

    # --- protocol -------------------------------------------------------------------------------

    def create(self, spec: InstanceSpec) -> LibvirtInstance:
        t0 = time.monotonic()
        from vmlab.host.cpu import full_guest_accel
        from vmlab.images import get_image
        from vmlab.paths import run_dir

        options = runtime_options(LibvirtOptions, spec.options, self.runtime)
        image = get_image(spec.image, verify="quick")
        memory = spec.memory_mib or image.default_memory_mib
        if memory < image.min_memory_mib:
            raise UsageError(
                f"--memory {memory} MiB is below image {image.name}'s minimum of {image.min_memory_mib} MiB",
                hint=f"--memory {image.min_memory_mib}",
            )
        accel, reason = full_guest_accel(spec.accel)
        if accel == "kvm" and "kvm" not in self.domain_types():
            raise NotAvailable(f"libvirt at {self.uri} offers no KVM domains", hint="--accel tcg")
        ensure_name_free(self, spec.name, spec.run_id if spec.name_scope == "run" else None)
        rname = resource_name(spec.run_id, spec.name)
        state = run_dir(spec.run_id) / spec.name
        shutil.rmtree(state, ignore_errors=True)  # stale: no live instance has this name (checked above)
        state.mkdir(parents=True)
        try:
            inst = self._define(spec, options, image, accel, reason, memory, rname, state, t0)
        except BaseException:
            shutil.rmtree(state, ignore_errors=True)
            raise
        inst.mark("created")
        return inst

    def _define(
        self,
        spec: InstanceSpec,
        options: LibvirtOptions,
        image: ImageInfo,
        accel: str,
        reason: str,
        memory: int,
        rname: str,
        state: Path,
        t0: float,
    ) -> LibvirtInstance:
        """Per-run files and the persistent domain; the caller removes `state` if this fails."""
        for d in (state.parent, state):
            os.chmod(d, 0o755)  # QEMU (user libvirt-qemu) writes the console log here
        console = state / "console.log"
        initrd = per_run_initrd(image.initrd, state)
        cmdline = compose_cmdline(image.cmdline, image.cmdline_tcg, accel, options.kernel_args)
        from vmlab.backends.libvirt.domain_xml import resolve_firmware
        from vmlab.paths import vmlab_home

        loader, firmware = resolve_firmware(
            options.firmware if options.firmware is not None else image.firmware
        )
        self.host.prepare_files(rname, state, [image.kernel, initrd])

        meta = {
            "name": spec.name,
            "run_id": spec.run_id,
            "lab": spec.lab,
            "owner": _owner(),
            "home": str(vmlab_home()),
            "uri": self.uri,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "image": image.name,
            "image_digest": image.digest,
            "host_key": image.host_public_key,
            "client_key": str(state / "id_ed25519"),
            "console_log": str(console),
            "state_dir": str(state),
            "accel": accel,
            "accel_reason": reason,
            "firmware": firmware,
            "ready_marker": image.ready_marker,
            "ssh_port": "0",
        }
        model = DomainModel(
            name=rname,
            domain_type="kvm" if accel == "kvm" else "qemu",
            memory_mib=memory,
            vcpus=spec.vcpus,
            kernel=image.kernel,
            initrd=initrd,
            cmdline=cmdline,
            serial_log=console,
            loader=loader,
            balloon=options.balloon,
            metadata=meta,
        )
        with deferred_interrupts():
            dom = lv.define(self.conn, model.to_xml(), f"defining domain {rname} failed")
            model.uuid = dom.UUIDString()
            inst = LibvirtInstance(self, dom, model, spec.ready_timeout_s, t0)
            self._created.append(inst)
        return inst

    def list_owned(self) -> list[Record]:
        records = []
        for dom in lv.list_domains(self.conn, self.uri):
            meta = lv.metadata(dom)
            if meta is None:
                continue
            records.append(self._record(dom, meta))
        return records

    def attach(self, record: Record) -> LibvirtInstance:
        dom = lv.lookup(self.conn, record.resource)
        if dom is None:
            raise BackendError(f"domain {record.resource} not found on {self.uri}")
        meta = lv.metadata(dom) or {}
        model = DomainModel(
            name=record.resource,
            domain_type="qemu",
            memory_mib=0,
            vcpus=1,
            kernel=Path(),
            initrd=Path(),
            cmdline="",
            serial_log=Path(meta.get("console_log", "")),
            ssh_port=int(meta.get("ssh_port", "0")),
            metadata=meta,
        )
        inst = LibvirtInstance(self, dom, model, 60.0, time.monotonic())
        inst.ladder.clear()
        return inst

    def destroy_record(self, record: Record) -> None:
        dom = lv.lookup(self.conn, record.resource)
        if dom is None:
            return  # already gone
        lv.destroy(dom)
        state = record.extra.get("state_dir")
        if state:
            self.host.remove_state(Path(state))

    def cleanup_created(self) -> None:
        """Destroy every instance this backend object created (used when `up` fails or is interrupted)."""
        for inst in reversed(self._created):
            inst.destroy()

    def close(self) -> None:
        lv.close(self.conn)
        self.host.close()

    # --- helpers --------------------------------------------------------------------------------

    def domain_types(self) -> set[str]:
        return lv.domain_types_of(self.conn)

    def _address(self, port: str) -> str:
        """Where the guest's SSH answers; for a remote libvirt host, on that host's loopback."""
        if port == "0":
            return ""
        return f"ssh://root@{SSH_HOST}:{port}{self.host.via}"

    def _record(self, dom: Any, meta: dict[str, str]) -> Record:
        active = lv.is_active(dom)
        state = "running" if active else "shut off"
        port = meta.get("ssh_port", "0")
        created = meta.get("created_at", "")
        uptime = None
        if created and active:
            try:
                uptime = round(
                    (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(created)).total_seconds(), 1
                )
            except ValueError:
                uptime = None
        name = lv.name_of(dom)
        return Record(
            name=meta.get("name", ""),
            kind="vm",
            runtime=RUNTIME,
            run_id=meta.get("run_id", ""),
            resource=name,
            state=state,
            lab=meta.get("lab", ""),
            accel=meta.get("accel", ""),
            address=self._address(port),
            created_at=created,
            uptime_s=uptime,
            image=f"{meta.get('image', '')}:{meta.get('image_digest', '')[:12]}",
            home=meta.get("home", ""),
            uri=self.uri,  # where it was found: the recorded `uri` may name another alias of this daemon
            extra={**meta, "uuid": lv.uuid(dom)},
        )


def compose_cmdline(base: str, tcg_only: str, accel: str, extra: str) -> str:
    """The image's command line, its TCG-only options when the guest runs under TCG, then the user's.

    The TCG-only options skip timer calibrations that cost tenths of a second of emulated time; with
    KVM the TSC-deadline timer makes them moot, and PIT ticks would cost exits, so KVM never gets them.
    """
    return " ".join(x for x in (base, tcg_only if accel == "tcg" else "", extra) if x)


def _owner() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


Progress = Callable[[str], None]
