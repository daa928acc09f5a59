"""Guests under libvirt: a thin layer that speaks libvirt (errors translated in one place) and the
LibvirtInstance the rest of vmlab uses.

Every domain is persistent while it lives (so `down --all` finds it even after a crash) and carries a
vmlab <metadata> element with everything needed to reach it again from another process: run id, lab,
SSH port, pinned host key, client key path, console log path.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vmlab.backends.base import (
    NS_URI,
    VM_STAGES,
    ExecResult,
    InstanceBase,
    InstanceSpec,
    Kind,
    Record,
    ensure_name_free,
    resource_name,
)
from vmlab.backends.capabilities import (
    CapabilityMissing,
    MemorySample,
    ProcessMemory,
    TrapCounter,
    maps_from_psutil,
)
from vmlab.backends.context import RunContext
from vmlab.backends.domain_xml import DomainModel, parse_metadata
from vmlab.backends.ports import free_port, port_lock
from vmlab.backends.remote import RemoteHost, ssh_target
from vmlab.backends.signals import deferred_interrupts
from vmlab.backends.uri import SYSTEM, default_uri
from vmlab.errors import BackendError, NotAvailable, ReadyTimeout, UsageError, VmlabError
from vmlab.guest.console import ConsoleLog
from vmlab.guest.ssh import Dial, SshSession, port_open, read_banner, tcp_dial
from vmlab.guest.wait import wait_for
from vmlab.images.model import ImageInfo
from vmlab.images.runfiles import per_run_initrd

log = logging.getLogger("vmlab")
SSH_HOST = "127.0.0.1"


class _WithConsole(BackendError):
    """A guest failure that carries the tail of the serial console, for the user to read."""

    def __init__(
        self, message: str, *, hint: str | None = None, console_tail: list[str] | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.console_tail = console_tail or []


class GuestNotReady(_WithConsole, ReadyTimeout):
    """A readiness stage timed out."""


class GuestFailed(_WithConsole):
    """The guest stopped or panicked before it was ready."""


def translate(e: Exception, what: str) -> BackendError:
    """The one place libvirt errors become vmlab errors."""
    msg = e.get_error_message() if hasattr(e, "get_error_message") else str(e)
    return BackendError(f"{what}: {msg}")


def _silence_libvirt() -> Any:
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


RUNTIME = "libvirt"


def open_runtime(ctx: RunContext) -> LibvirtBackend:
    return LibvirtBackend(ctx.uri)


class LibvirtBackend:
    kind: Kind = "vm"
    runtime = RUNTIME

    def __init__(self, uri: str | None = None) -> None:
        libvirt = _silence_libvirt()
        self.uri = uri or default_uri()
        target = ssh_target(self.uri)  # first: a bad keyfile= is the user's error, not libvirt's
        # an ssh-transport URI: guest port, console log and boot files are on that host (remote.py)
        self.remote: RemoteHost | None = RemoteHost(target) if target else None
        if self.uri == SYSTEM and not Path("/var/run/libvirt/libvirt-sock").exists():
            raise NotAvailable(
                f"libvirt at {self.uri} does not answer (libvirtd is not running)",
                hint="make setup (starts libvirtd), or pass --connect URI",
            )
        try:
            self.conn = libvirt.open(self.uri)
        except libvirt.libvirtError as e:
            raise NotAvailable(
                f"libvirt at {self.uri} does not answer: {e.get_error_message()}",
                hint="make setup (starts libvirtd), or pass --connect URI",
            ) from e
        self._created: list[LibvirtInstance] = []

    # --- protocol -------------------------------------------------------------------------------

    def create(self, spec: InstanceSpec) -> LibvirtInstance:
        t0 = time.monotonic()
        from vmlab.host.cpu import full_guest_accel
        from vmlab.images import get_image
        from vmlab.paths import run_dir

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
            inst = self._define(spec, image, accel, reason, memory, rname, state, t0)
        except BaseException:
            shutil.rmtree(state, ignore_errors=True)
            raise
        inst.mark("created")
        return inst

    def _define(
        self,
        spec: InstanceSpec,
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
        cmdline = compose_cmdline(image.cmdline, image.cmdline_tcg, accel, spec.kernel_args)
        from vmlab.backends.domain_xml import resolve_firmware
        from vmlab.paths import vmlab_home

        loader, firmware = resolve_firmware(spec.firmware if spec.firmware is not None else image.firmware)
        if self.remote is not None:
            uploaded = self.remote.prepare_files(state, [image.kernel, initrd])
            for path, why in uploaded.items():
                log.info("%s: uploaded %s to %s (%s)", rname, path, self.remote.target.label, why)

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
            metadata=meta,
        )
        import libvirt

        with deferred_interrupts():
            try:
                dom = self.conn.defineXML(model.to_xml())
            except libvirt.libvirtError as e:
                raise translate(e, f"defining domain {rname} failed") from e
            model.uuid = dom.UUIDString()
            inst = LibvirtInstance(self, dom, model, spec.ready_timeout_s, t0)
            self._created.append(inst)
        return inst

    def list_owned(self) -> list[Record]:
        import libvirt

        records = []
        try:
            domains = self.conn.listAllDomains(0)
        except libvirt.libvirtError as e:
            raise translate(e, f"listing domains on {self.uri} failed") from e
        for dom in domains:
            meta = _metadata(dom)
            if meta is None:
                continue
            records.append(self._record(dom, meta))
        return records

    def attach(self, record: Record) -> LibvirtInstance:
        import libvirt

        try:
            dom = self.conn.lookupByName(record.resource)
        except libvirt.libvirtError as e:
            raise translate(e, f"domain {record.resource} not found") from e
        meta = _metadata(dom) or {}
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
        import libvirt

        try:
            dom = self.conn.lookupByName(record.resource)
        except libvirt.libvirtError:
            return
        _destroy_domain(dom)
        state = record.extra.get("state_dir")
        if state:
            _remove_state(Path(state), self.remote)

    def cleanup_created(self) -> None:
        """Destroy every instance this backend object created (used when `up` fails or is interrupted)."""
        for inst in reversed(self._created):
            inst.destroy()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection must not mask the real error
            self.conn.close()
        if self.remote is not None:
            self.remote.close()

    # --- helpers --------------------------------------------------------------------------------

    def domain_types(self) -> set[str]:
        import xml.etree.ElementTree as ET

        caps = ET.fromstring(self.conn.getCapabilities())
        return {d.get("type", "") for d in caps.iter("domain")}

    def _address(self, port: str) -> str:
        """Where the guest's SSH answers; for a remote libvirt host, on that host's loopback."""
        if port == "0":
            return ""
        via = f" via {self.remote.target.label}" if self.remote is not None else ""
        return f"ssh://root@{SSH_HOST}:{port}{via}"

    def _record(self, dom: Any, meta: dict[str, str]) -> Record:
        import libvirt

        active = bool(dom.isActive())
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
        try:
            name = dom.name()
        except libvirt.libvirtError:
            name = ""
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
            extra={**meta, "uuid": _uuid(dom)},
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


def _uuid(dom: Any) -> str:
    import libvirt

    try:
        return str(dom.UUIDString())
    except libvirt.libvirtError:
        return ""


def _metadata(dom: Any) -> dict[str, str] | None:
    import libvirt

    try:
        xml = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS_URI)
    except libvirt.libvirtError:
        return None
    return parse_metadata(xml)


def _destroy_domain(dom: Any) -> None:
    """Stop and undefine, tolerating "not running" and "already gone"."""
    import libvirt

    try:
        if dom.isActive():
            dom.destroy()
    except libvirt.libvirtError as e:
        if e.get_error_code() not in (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_NO_DOMAIN):
            raise translate(e, "stopping the domain failed") from e
    try:
        dom.undefine()
    except libvirt.libvirtError as e:
        if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise translate(e, "undefining the domain failed") from e


def _remove_state(state: Path, remote: RemoteHost | None = None) -> None:
    if os.environ.get("VMLAB_KEEP_LOGS"):
        return
    shutil.rmtree(state, ignore_errors=True)
    parent = state.parent
    with contextlib.suppress(OSError):
        parent.rmdir()  # the run dir, once its last instance is gone
    if remote is not None:  # the remote's copy (console log, initrd); best effort like the local one
        try:
            remote.remove_tree(state)
            remote.rmdir(parent)
        except VmlabError as e:
            log.warning("could not remove %s on %s: %s", state, remote.target.label, e.one_line())


class LibvirtInstance(InstanceBase):
    kind: Kind = "vm"
    runtime = RUNTIME
    io_sink = "/dev/ttyS0"  # device I/O: every access traps to the VMM
    stages = VM_STAGES

    def __init__(
        self, backend: LibvirtBackend, dom: Any, model: DomainModel, ready_timeout_s: float, t0: float
    ) -> None:
        super().__init__(model.metadata.get("name", model.name), model.name)
        self.ladder["create_called"] = t0
        self.backend = backend
        self.dom = dom
        self.model = model
        self.meta = model.metadata
        self.accel = self.meta.get("accel", "")
        self.accel_reason = self.meta.get("accel_reason", "")
        self.ready_timeout_s = ready_timeout_s
        self.remote = backend.remote
        self.dial: Dial = self.remote.dial if self.remote is not None else tcp_dial
        self.console = ConsoleLog(model.serial_log, self.remote.read_from if self.remote else None)
        self.guest_uptime_s: float | None = None
        self.ssh_banner: str | None = None
        self._ssh: SshSession | None = None

    @property
    def ssh_port(self) -> int:
        return int(self.meta.get("ssh_port", "0"))

    @property
    def address(self) -> str:
        return f"ssh://root@{SSH_HOST}:{self.ssh_port}" if self.ssh_port else ""

    @property
    def console_path(self) -> Path:
        return self.model.serial_log

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Pick the SSH port and start QEMU under the port lock (race-free across processes)."""
        import libvirt

        last: Exception | None = None
        for _attempt in range(3):
            with port_lock():
                port = free_port(SSH_HOST)
                self.model.ssh_port = port
                self.meta["ssh_port"] = str(port)
                try:
                    self.dom = self.backend.conn.defineXML(self.model.to_xml())
                    self.dom.create()
                except libvirt.libvirtError as e:
                    last = e
                    if "hostfwd" in str(e) or "host forwarding" in str(e):
                        continue
                    raise self._failed(
                        translate(e, f"starting {self.resource} failed"),
                        "see the console tail; `vmlab doctor` checks libvirt",
                    ) from e
            break
        else:
            raise translate(last or Exception("?"), f"no free SSH port for {self.resource}")
        self.mark("process_running")

    def wait_ready(self, timeout_s: float | None = None) -> None:
        deadline = time.monotonic() + (timeout_s or self.ready_timeout_s)
        hint = "a slow host needs a longer --timeout; see the console tail above"
        try:
            self.guest_uptime_s = self.console.wait_marker(
                self.meta.get("ready_marker", "VMLAB_READY"),
                deadline=deadline,
                stage=f"{self.name}: serial ready marker",
                abort=self._abort_reason,
                hint=hint,
            )
            self.mark("serial_marker")  # within a millisecond of the write (inotify), see guest/watch.py
            wait_for(
                lambda: True if port_open(SSH_HOST, self.ssh_port, 1.0, self.dial) else None,
                deadline=deadline,
                stage=f"{self.name}: SSH port {self.ssh_port}",
                abort=self._abort_reason,
                hint=hint,
            )
            self.mark("ssh_port")
            self.ssh_banner = wait_for(
                lambda: read_banner(SSH_HOST, self.ssh_port, 2.0, self.dial),
                deadline=deadline,
                stage=f"{self.name}: SSH banner",
                abort=self._abort_reason,
                hint=hint,
            )
            self.mark("ssh_banner")
            wait_for(
                self._first_command,
                deadline=deadline,
                stage=f"{self.name}: first SSH command",
                abort=self._abort_reason,
                first_delay=0.1,
                max_delay=1.0,
                hint=hint,
            )
            self.mark("first_command")
        except ReadyTimeout as e:
            raise GuestNotReady(e.message, hint=e.hint, console_tail=self._tail_for_error()) from e
        except BackendError as e:
            raise self._failed(e, e.hint) from e

    def _first_command(self) -> bool | None:
        try:
            res = self.exec(["true"], timeout=30.0)
        except BackendError as e:
            log.debug("first command not yet: %s", e)
            return None
        return True if res.ok else None

    def _abort_reason(self) -> str | None:
        import libvirt

        try:
            active = self.dom.isActive()
        except libvirt.libvirtError:
            active = 0
        if not active:
            panic = self.console.panic()
            return "the guest stopped" + (f" ({panic})" if panic else " (QEMU exited)")
        return None

    def _failed(self, e: BackendError, hint: str | None) -> GuestFailed:
        return GuestFailed(e.message, hint=hint, console_tail=self._tail_for_error())

    def _tail_for_error(self) -> list[str]:
        """The last lines, led by the panic line when a stack dump pushed it out of the tail."""
        tail = self.console_tail()
        panic = self.console.panic()
        if panic and not any(panic in line for line in tail):
            tail = [panic, *tail]
        return tail

    # --- use ------------------------------------------------------------------------------------

    def session(self) -> SshSession:
        if self._ssh is None:
            self._ssh = SshSession(
                SSH_HOST,
                self.ssh_port,
                self.meta["host_key"],
                Path(self.meta["client_key"]),
                dial=self.dial if self.remote is not None else None,
            )
        return self._ssh

    def exec(self, cmd: str | Sequence[str], timeout: float = 60.0) -> ExecResult:
        if not self.ssh_port:
            raise BackendError(f"{self.name} has no SSH port (not started)", hint=f"vmlab up {self.name}")
        return self.session().run(cmd, timeout=timeout)

    def pid(self) -> int | None:
        """The QEMU process (libvirt's pid file, else the process whose cmdline names the guest);
        None for a remote libvirt host, whose processes this host cannot see."""
        if self.remote is not None:
            return None
        for base in (Path("/run/libvirt/qemu"), Path.home() / ".cache/libvirt/qemu/run"):
            f = base / f"{self.resource}.pid"
            try:
                return int(f.read_text().strip())
            except (OSError, ValueError):
                continue
        import psutil

        needle = f"guest={self.resource},"
        for p in psutil.process_iter(["cmdline"]):
            if any(needle in a for a in (p.info.get("cmdline") or [])):
                return int(p.pid)
        return None

    def stats(self) -> dict[str, Any]:
        """Host-side view: QEMU's RSS/USS/PSS and CPU time (psutil), libvirt's memoryStats and info."""
        import libvirt
        import psutil

        out: dict[str, Any] = {"kind": "vm", "name": self.name, "resource": self.resource}
        pid = self.pid()
        out["pid"] = pid
        if pid is not None:
            try:
                p = psutil.Process(pid)
                mem = p.memory_full_info()
                cpu = p.cpu_times()
                out["process"] = {
                    "rss": mem.rss,
                    "uss": mem.uss,
                    "pss": getattr(mem, "pss", None),
                    "swap": getattr(mem, "swap", None),
                    "vms": mem.vms,
                    "cpu_user_s": cpu.user,
                    "cpu_system_s": cpu.system,
                    "threads": p.num_threads(),
                }
                out["mappings"] = _largest_mappings(p)
            except psutil.Error as e:
                out["process_error"] = str(e)
        try:
            out["libvirt_memory_stats"] = {k: int(v) for k, v in self.dom.memoryStats().items()}
            state, max_kib, mem_kib, vcpus, cpu_ns = self.dom.info()
            out["libvirt_info"] = {
                "state": state,
                "max_memory_kib": max_kib,
                "memory_kib": mem_kib,
                "vcpus": vcpus,
                "cpu_time_ns": cpu_ns,
            }
        except libvirt.libvirtError as e:
            raise translate(e, f"stats of {self.resource}") from e
        return out

    def guest_uptime(self) -> float | None:
        return self.guest_uptime_s

    def memory(self) -> MemorySample:
        """QEMU's memory maps (guest RAM is the mapping of the configured size), with libvirt's view."""
        import libvirt
        import psutil

        pid = self.pid()
        if pid is None:
            raise CapabilityMissing(
                f"{self.name}: QEMU's process is not visible from this host (remote libvirt?)",
                hint="run vmlab on the libvirt host",
            )
        try:
            p = psutil.Process(pid)
            full = p.memory_full_info()
            maps = tuple(maps_from_psutil(p.memory_maps(grouped=False)))
        except psutil.AccessDenied as e:
            raise CapabilityMissing(
                f"QEMU of {self.name} is not readable by this user ({e})", hint="run vmlab as root"
            ) from e
        except psutil.Error as e:
            raise BackendError(f"{self.name}: QEMU (pid {pid}) vanished while measured ({e})") from e
        try:
            _state, max_kib, _mem, _vcpus, _cpu = self.dom.info()
            extra = {f"libvirt_{k}": int(v) for k, v in self.dom.memoryStats().items()}
        except libvirt.libvirtError as e:
            raise translate(e, f"memory of {self.resource}") from e
        return MemorySample(
            processes=(ProcessMemory("qemu", pid, full.rss, full.uss, getattr(full, "pss", None), maps),),
            method="QEMU RSS minus the guest-RAM mapping's resident pages (memory maps)",
            guest_ram_bytes=int(max_kib) * 1024,
            code_cache=self.accel == "tcg",
            extra=extra,
        )

    def trap_counter(self) -> TrapCounter:
        """KVM's exit statistics where the guest runs under KVM, else TCG's `info jit`."""
        from vmlab.backends import counters

        if self.accel != "kvm":
            return _CumulativeCounter(
                lambda: counters.parse_info_jit(self.monitor("info jit")),
                counters.JIT_PROVIDER,
                "tb_count",
                [
                    "the guest runs under TCG: there are no VM exits to count; these are the binary "
                    "translator's counters (translation blocks, chained jumps) before and after each phase"
                ],
                self,
            )
        pid = self.pid()
        if pid is not None and counters.read_debugfs_vm(pid) is not None:
            return _CumulativeCounter(
                lambda: counters.read_debugfs_vm(pid) or {}, counters.DEBUGFS_PROVIDER, "exits", [], self
            )
        root = os.geteuid() == 0
        raise CapabilityMissing(
            f"{self.name} runs under KVM but no exit counter is readable"
            + ("" if root else " (debugfs is readable by root only)"),
            hint="mount -t debugfs none /sys/kernel/debug"
            + ("" if root else ", then run the traps experiment as root"),
        )

    def monitor(self, hmp_command: str) -> str:
        """An HMP command through libvirt (e.g. `info jit` under TCG)."""
        import libvirt
        import libvirt_qemu  # type: ignore[import-untyped]

        try:
            return str(
                libvirt_qemu.qemuMonitorCommand(
                    self.dom, hmp_command, libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP
                )
            )
        except libvirt.libvirtError as e:
            raise translate(e, f"monitor command {hmp_command!r} on {self.resource}") from e

    def console_tail(self, lines: int = 20) -> list[str]:
        return self.console.tail(lines)

    def close(self) -> None:
        if self._ssh is not None:
            self._ssh.close()
            self._ssh = None

    def _destroy(self) -> None:
        with deferred_interrupts():
            if self._ssh is not None:
                self._ssh.close()
            _destroy_domain(self.dom)
            state = self.meta.get("state_dir")
            if state:
                _remove_state(Path(state), self.remote)


def _largest_mappings(p: Any, n: int = 3) -> list[dict[str, Any]]:
    """The biggest mappings by size: guest RAM (exactly the guest size) and, under TCG, the code buffer."""
    try:
        maps = p.memory_maps(grouped=False)
    except Exception:  # psutil raises several types for vanished/unreadable processes
        return []
    rows = []
    for m in maps:
        size = _map_size(getattr(m, "addr", ""))
        rows.append({"path": m.path or "[anon]", "size": size, "rss": m.rss})
    rows.sort(key=lambda r: r["size"], reverse=True)
    return rows[:n]


def _map_size(addr: str) -> int:
    try:
        lo, hi = addr.split("-")
        return int(hi, 16) - int(lo, 16)
    except ValueError:
        return 0


Progress = Callable[[str], None]


class _CumulativeCounter:
    """A provider whose counters only grow (KVM statistics, `info jit`): a phase is a difference."""

    def __init__(
        self,
        read: Callable[[], dict[str, int]],
        provider: str,
        headline: str,
        notes: list[str],
        inst: LibvirtInstance,
    ) -> None:
        self.read, self.provider, self.headline, self.notes, self.inst = read, provider, headline, notes, inst

    def snapshot(self) -> dict[str, int] | None:
        return self.read()

    def phase(self, name: str, command: str | None, idle_s: float) -> dict[str, int]:
        before = self.read()
        if command is None:
            time.sleep(idle_s)
        else:
            res = self.inst.exec(command, timeout=300)
            if not res.ok:
                raise BackendError(f"{name} workload in {self.inst.name} exited {res.rc}")
        after = self.read()
        return {k: after[k] - before.get(k, 0) for k in after}

    def close(self) -> None:
        """Nothing to release."""
