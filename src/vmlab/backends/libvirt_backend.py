"""Guests under libvirt: the LibvirtBackend and the LibvirtInstance the rest of vmlab uses.

Split by concern: `libvirt_adapter` speaks libvirt (open, probe, define, destroy; its errors translated
in one place), `libvirt_host` says where the guest's port, console log and boot files are (this host or
an ssh URI's), and `readiness.VM_LADDER` is the table of readiness stages this instance climbs.

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vmlab.backends import libvirt_adapter as lv
from vmlab.backends import libvirt_recovery as recovery
from vmlab.backends.base import (
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
from vmlab.backends.domain_xml import DomainModel
from vmlab.backends.libvirt_host import LocalHost, SshHost, host_for
from vmlab.backends.ports import free_port, port_lock
from vmlab.backends.readiness import VM_LADDER, Attempt, climb
from vmlab.backends.remote import RemoteHost
from vmlab.backends.signals import deferred_interrupts
from vmlab.errors import BackendError, NotAvailable, ReadyTimeout, UsageError, VmlabError
from vmlab.guest.ssh import SshSession, port_open, read_banner
from vmlab.host.libvirt import default_uri
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


RUNTIME = "libvirt"


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
            balloon=spec.balloon,
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


class LibvirtInstance(InstanceBase):
    kind: Kind = "vm"
    runtime = RUNTIME
    io_sink = "/dev/ttyS0"  # device I/O: every access traps to the VMM
    stages = VM_LADDER.names

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
        self.host = backend.host
        self.console = self.host.console(model.serial_log)
        self.guest_uptime_s: float | None = None
        self.ssh_banner: str | None = None
        self._ssh: SshSession | None = None
        self._qemu_pid: int | None = None  # read once QEMU runs: cleanup needs it when libvirtd is gone

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
        what = f"starting {self.resource} failed"
        last: lv.PortTaken | None = None
        for _attempt in range(3):
            with port_lock():
                port = free_port(SSH_HOST)
                self.model.ssh_port = port
                self.meta["ssh_port"] = str(port)
                try:
                    self.dom = lv.define(self.backend.conn, self.model.to_xml(), what)
                    lv.start(self.dom, what)
                except lv.PortTaken as e:
                    last = e
                    continue  # the port was taken between choosing and binding it: another one
                except lv.DaemonGone:
                    raise  # libvirtd's fault, with its own fix
                except BackendError as e:
                    if "unexpectedly closed" in e.message:  # QEMU died while libvirt started it
                        ended = self._qemu_ended(e.message)
                        raise self._failed(ended, ended.hint) from e
                    raise self._failed(e, "see the console tail; `vmlab doctor` checks libvirt") from e
            break
        else:
            raise BackendError(f"no free SSH port for {self.resource}: {last.message if last else '?'}")
        self._qemu_pid = self.pid()
        self.mark("process_running")

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Climb VM_LADDER (readiness.py): serial marker, SSH port, banner, first command."""
        try:
            found = climb(
                self,
                VM_LADDER.ready,
                deadline=time.monotonic() + (timeout_s or self.ready_timeout_s),
                abort=self._abort_reason,
                prefix=self.name,
                stamp=self.mark,
            )
        except ReadyTimeout as e:
            if self.host.sees_processes and not recovery.virtlogd_runs():
                raise lv.DaemonGone(
                    f"{self.name}: the guest's serial console fell silent: virtlogd, which writes it, "
                    "is not running",
                    hint="start virtlogd again (make setup, or virtlogd -d as root), then run again",
                ) from e
            raise GuestNotReady(e.message, hint=e.hint, console_tail=self._tail_for_error()) from e
        except lv.DaemonGone:
            raise  # the daemon's fault: the guest's console has nothing to say about it
        except BackendError as e:
            raise self._failed(e, e.hint) from e
        self.guest_uptime_s = found["serial_marker"]
        self.ssh_banner = found["ssh_banner"]

    # --- the ladder's probes (readiness.GuestSteps) -----------------------------------------------

    def wait_serial_marker(self, attempt: Attempt) -> float:
        """Woken within a millisecond of QEMU's write (inotify, see guest/watch.py)."""
        return self.console.wait_marker(
            self.meta.get("ready_marker", "VMLAB_READY"),
            deadline=attempt.deadline,
            stage=attempt.stage,
            abort=attempt.abort,
            hint=attempt.hint,
        )

    def ssh_port_open(self) -> bool | None:
        return True if port_open(SSH_HOST, self.ssh_port, 1.0, self.host.dial) else None

    def ssh_banner_line(self) -> str | None:
        return read_banner(SSH_HOST, self.ssh_port, 2.0, self.host.dial)

    def first_command_ok(self) -> bool | None:
        try:
            res = self.exec(["true"], timeout=30.0)
        except BackendError as e:
            log.debug("first command not yet: %s", e)
            return None
        return True if res.ok else None

    def _abort_reason(self) -> str | None:
        """None while QEMU runs; otherwise raises what ended the wait, each with the fix that fits:
        libvirtd gone (QEMU may well still run), the guest kernel's panic, or QEMU itself ended."""
        try:
            active = lv.is_active(self.dom)
        except lv.DaemonGone as e:
            pid = self._qemu_pid
            runs = pid is not None and recovery.is_qemu_of(pid, self.resource)
            qemu = f"QEMU pid {pid} still runs" if runs else "QEMU's state is unknown"
            raise lv.DaemonGone(
                f"{self.name}: libvirtd stopped answering while the guest booted ({qemu})", hint=e.hint
            ) from e
        if active:
            return None
        panic = self.console.panic()
        if panic:
            raise BackendError(
                f"{self.name}: the guest kernel panicked: {panic}",
                hint="see the console tail above; the kernel, the initrd or --kernel-args are at fault",
            )
        why = lv.stop_reason(self.dom)
        raise self._qemu_ended(
            f"{self.name}: QEMU exited before the guest was ready" + (f" (libvirt: {why})" if why else "")
        )

    def _qemu_ended(self, message: str) -> BackendError:
        """QEMU is gone, not slow: its own last words, and a fix that does not blame the timeout."""
        last = recovery.qemu_last_words(self.resource)
        log_file = recovery.qemu_log(self.resource)
        return BackendError(
            message + (f"; QEMU's log: {last}" if last else ""),
            hint="QEMU was ended from outside or crashed (a longer --timeout will not help)"
            + (f"; see {log_file}" if log_file else ""),
        )

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
                dial=self.host.ssh_dial,
            )
        return self._ssh

    def shell_argv(self) -> list[str]:
        """OpenSSH to the 127.0.0.1 forward with the pinned host key and the instance's client key; for
        an ssh-transport URI it hops through the libvirt host, where that forward listens."""
        from vmlab.backends.remote import openssh_proxy_command, ssh_target

        if shutil.which("ssh") is None:
            raise NotAvailable("the ssh client is not installed", hint="apt-get install openssh-client")
        port = self.ssh_port
        if not port or "client_key" not in self.meta or "host_key" not in self.meta:
            raise NotAvailable(
                f"vm {self.name} has no SSH forward recorded (it never started)",
                hint=f"vmlab down {self.name}; vmlab up {self.name}",
            )
        argv = [
            "ssh",
            "-p",
            str(port),
            "-i",
            self.meta["client_key"],
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            f"KnownHostsCommand=/bin/echo [{SSH_HOST}]:{port} {self.meta['host_key']}",
        ]
        target = ssh_target(self.backend.uri)
        if target is not None:  # the forward listens on the libvirt host's loopback: hop through it
            argv += ["-o", f"ProxyCommand={openssh_proxy_command(target)}"]
        argv.append(f"root@{SSH_HOST}")
        return argv

    def exec(self, cmd: str | Sequence[str], timeout: float = 60.0) -> ExecResult:
        if not self.ssh_port:
            raise BackendError(f"{self.name} has no SSH port (not started)", hint=f"vmlab up {self.name}")
        return self.session().run(cmd, timeout=timeout)

    def pid(self) -> int | None:
        """The QEMU process (libvirt's pid file, else the process whose cmdline names the guest);
        None for a remote libvirt host, whose processes this host cannot see."""
        if not self.host.sees_processes:
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
        (state, max_kib, mem_kib, vcpus, cpu_ns), out["libvirt_memory_stats"] = lv.info(
            self.dom, f"stats of {self.resource}"
        )
        out["libvirt_info"] = {
            "state": state,
            "max_memory_kib": max_kib,
            "memory_kib": mem_kib,
            "vcpus": vcpus,
            "cpu_time_ns": cpu_ns,
        }
        return out

    def guest_uptime(self) -> float | None:
        return self.guest_uptime_s

    def memory(self) -> MemorySample:
        """QEMU's memory maps (guest RAM is the mapping of the configured size), with libvirt's view."""
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
        dom_info, stats = lv.info(self.dom, f"memory of {self.resource}")
        max_kib = dom_info[1]
        extra = {f"libvirt_{k}": v for k, v in stats.items()}
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
            notes = [
                "the guest runs under TCG: there are no VM exits to count; these are the binary "
                "translator's counters (translation blocks, chained jumps) before and after each phase"
            ]
            try:
                version_note = counters.qemu_version_note(self.monitor("info version"))
            except VmlabError:
                version_note = None  # the counters themselves say whether the monitor answers
            return _CumulativeCounter(
                lambda: counters.parse_info_jit(self.monitor("info jit")),
                counters.JIT_PROVIDER,
                "tb_count",
                [*notes, *([version_note] if version_note else [])],
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

    def set_memory(self, mib: int) -> None:
        """Shrink or grow the running guest to `mib` through its balloon (InstanceSpec.balloon)."""
        lv.set_memory(self.dom, mib * 1024, f"setting the balloon of {self.resource} to {mib} MiB")

    def balloon_stats(self) -> dict[str, int]:
        """libvirt's memoryStats (KiB): `actual` is the guest's size now; with the balloon's 1 s period
        also what the guest's driver reports (`unused`, `available`, `usable`)."""
        return lv.info(self.dom, f"memory statistics of {self.resource}")[1]

    def monitor(self, hmp_command: str) -> str:
        """An HMP command through libvirt (e.g. `info jit` under TCG)."""
        return lv.monitor(self.dom, hmp_command, f"monitor command {hmp_command!r} on {self.resource}")

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
            try:
                lv.destroy(self.dom)
            except lv.DaemonGone:
                left = recovery.remove_without_daemon(
                    self.backend.uri, self.resource, self._qemu_pid or self.pid(), self._remove_state
                )
                if left is not None:
                    raise lv.DaemonGone(f"{self.name}: {left}") from None
                return
            self._remove_state()

    def _remove_state(self) -> None:
        state = self.meta.get("state_dir")
        if state:
            self.host.remove_state(Path(state))


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
