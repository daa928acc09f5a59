"""Where the tutors' re-run runs a student's box.py: a throwaway user in fresh namespaces, with a cgroup
subtree delegated to it (docs/labs/os-virt.md, "The tutors' re-run", says what this trusts).

The locked-down re-run container of the other labs allows neither namespaces nor cgroups, and running
the box on the runner as root would give student code the runner. So, per hand-in (needs root):

- a system user `vmlab-osvirt-rr-<hex>` with its own group, no home, no login shell, no supplementary
  groups; removed afterwards (`userdel`), after every process of its uid is killed;
- a temp folder owned by that user (0700): the copy of box.py, the tiny image's root file system, the
  hidden file; and a root-only temp folder for the launcher's markers; both removed afterwards;
- per cgroup controller (v1: memory, pids, cpu; v2: the unified tree) a directory
  `vmlab-osvirt-rr-<hex>` with a ceiling (memory, pids) the user cannot change, whose `cgroup.procs`
  (and the directory itself) the user owns: the box makes its own cgroups below it (delegation, as
  systemd's `Delegate=`), and they are all removed afterwards;
- each run: `unshare --mount --uts --ipc --net --pid --fork --kill-child` as root, where the launcher
  joins the delegated cgroups, binds them over /sys/fs/cgroup/<controller> (so the box finds a writable
  hierarchy where box.py looks), mounts a new /proc, hides /home, /root, /srv, /mnt, /media, /var/tmp
  and the given folders (the tutors' repository, the class's hand-ins) under empty tmpfs, sets a
  hostname, adds a veth pair (a network namespace that is not loopback only), writes a marker that
  only root can write, and execs the box through `setpriv` as the throwaway user with no capabilities,
  an empty bounding set, no-new-privs and a clean environment. The box's supervisor is PID 1 of that
  PID namespace: when it ends, or the runner kills the launcher on a time-out, every process of the
  run dies with it. No network but loopback and the veth pair (no peer outside).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vmlab.errors import BackendError

JAIL_PREFIX = "vmlab-osvirt-rr-"
CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpu")
HIDDEN_DIRS = ("/home", "/root", "/srv", "/mnt", "/media", "/var/tmp")
TOOLS = ("useradd", "userdel", "unshare", "setpriv", "ip", "nsenter", "mount")


class JailError(BackendError):
    """The runner could not make the re-run's jail: its fault, never the student's."""


@dataclass
class Jail:
    user: str
    uid: int
    gid: int
    dir: Path  # owned by the user: box.py, the rootfs, the hidden file
    private: Path  # root only: the launcher's markers
    cgroups: dict[Path, Path]  # hierarchy mount (host path) -> delegated directory
    v2: bool
    hide: list[Path] = field(default_factory=list)
    runs: int = 0

    def chown(self, path: Path) -> None:
        """Hand a file or a tree over to the jail's user (what the student's own files would be)."""
        os.chown(path, self.uid, self.gid, follow_symlinks=False)
        if path.is_dir() and not path.is_symlink():
            for p in path.rglob("*"):
                os.chown(p, self.uid, self.gid, follow_symlinks=False)

    def launch(self, argv: list[str], hostname: str, iface: str) -> tuple[subprocess.Popen[str], Path]:
        """Start argv as the jail's user in fresh namespaces; the marker exists once the launcher has
        set everything up and is about to exec argv (before: the runner's fault; after: the box's)."""
        self.runs += 1
        marker = self.private / f"ready-{self.runs}"
        lines = ["set -e"]
        for d in self.cgroups.values():
            procs = (d / "sup" if self.v2 else d) / "cgroup.procs"
            lines.append(f"echo $$ > {shlex.quote(str(procs))}")
        for mount, d in self.cgroups.items():
            lines.append(f"mount --bind {shlex.quote(str(d))} {shlex.quote(str(mount))}")
        lines.append("mount -t proc -o nosuid,nodev,noexec proc /proc")
        for h in [*HIDDEN_DIRS, *map(str, self.hide)]:
            q = shlex.quote(h)
            lines.append(f"if [ -d {q} ]; then mount -t tmpfs -o size=1m,mode=755 none {q}; fi")
        lines.append(f"hostname {shlex.quote(hostname)}")
        lines.append(f"ip link add {shlex.quote(iface)} type veth peer name {shlex.quote(iface + 'p')}")
        lines.append(f": > {shlex.quote(str(marker))}")
        env = ["PATH=/usr/bin:/bin", f"HOME={self.dir}", "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"]
        who = [f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]
        drop = ["--inh-caps=-all", "--bounding-set=-all", "--nnp"]
        lines.append(f'exec setpriv {" ".join(who + drop)} -- env -i {" ".join(env)} "$@"')
        cmd = ["unshare", "--mount", "--uts", "--ipc", "--net", "--pid", "--fork", "--kill-child"]
        cmd += ["--propagation", "private", "--", "/bin/sh", "-c", "\n".join(lines), "jail", *argv]
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
            cwd=self.dir,
        )
        return proc, marker

    def leftovers(self) -> list[Path]:
        """cgroup directories below the delegated ones (the box's own, or the launcher's `sup` on v2)."""
        found: list[Path] = []
        for d in self.cgroups.values():
            if d.is_dir():
                found += [p for p in d.rglob("*") if p.is_dir() and p.name != "sup"]
        return found

    def sweep(self) -> list[str]:
        """Kill what is left in the cgroups below the delegated ones, remove them; return what was there."""
        gone: list[str] = []
        for d in self.cgroups.values():
            if d.is_dir():
                for p in sorted((p for p in d.rglob("*") if p.is_dir() and p.name != "sup"), reverse=True):
                    _remove_cgroup(p)
                    gone.append(str(p))
        return gone


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGKILL to the launcher's session: --kill-child then kills the jail's PID 1, and with it the rest."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)


def _run(argv: list[str]) -> None:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise JailError(f"the re-run's jail: {argv[0]} failed: {e}") from e
    if p.returncode != 0:
        raise JailError(f"the re-run's jail: {' '.join(argv[:2])} failed: {p.stderr.strip()[:200]}")


def _pids_of_uid(uid: int) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            for line in (d / "status").read_text().splitlines():
                if line.startswith("Uid:"):
                    if uid in [int(x) for x in line.split()[1:]]:
                        found.append(int(d.name))
                    break
        except (OSError, ValueError):
            continue
    return found


def kill_uid(uid: int) -> int:
    """SIGKILL every process of the uid (real, effective or saved) until none is left; how many."""
    killed: set[int] = set()
    for _ in range(50):
        pids = _pids_of_uid(uid)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        time.sleep(0.05)
    return len(killed)


def _remove_cgroup(d: Path) -> None:
    for _ in range(300):
        try:
            for pid in (d / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)


def _delegate(name: str, uid: int, gid: int, memory_mib: int, pids: int) -> tuple[dict[Path, Path], bool]:
    """The delegated cgroup directories (hierarchy mount -> directory), with ceilings the user cannot
    change; whether the host runs cgroup v2."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        d = CGROUP_ROOT / name
        (CGROUP_ROOT / "cgroup.subtree_control").write_text("+memory +pids +cpu")
        d.mkdir()
        (d / "memory.max").write_text(str(memory_mib << 20))
        (d / "pids.max").write_text(str(pids))
        (d / "sup").mkdir()
        for f in (d, d / "cgroup.procs", d / "cgroup.subtree_control", d / "cgroup.threads"):
            os.chown(f, uid, gid)
        for f in (d / "sup", d / "sup" / "cgroup.procs"):
            os.chown(f, uid, gid)
        return {CGROUP_ROOT: d}, True
    out: dict[Path, Path] = {}
    for c in V1_CONTROLLERS:
        mount = (CGROUP_ROOT / c).resolve()
        if not mount.is_dir():
            raise JailError(f"the re-run's jail: no cgroup v1 hierarchy {CGROUP_ROOT / c}")
        d = mount / name
        d.mkdir()
        out[mount] = d
        if c == "memory":
            (d / "memory.limit_in_bytes").write_text(str(memory_mib << 20))
        if c == "pids":
            (d / "pids.max").write_text(str(pids))
        for f in (d, d / "cgroup.procs", d / "tasks"):
            os.chown(f, uid, gid)
    return out, False


@contextlib.contextmanager
def jail(hide: list[Path] | None = None, memory_mib: int = 512, pids: int = 256) -> Iterator[Jail]:
    """A throwaway user, its folders and delegated cgroups for one hand-in; all gone afterwards, also
    after an error or Ctrl-C."""
    if os.geteuid() != 0:
        raise JailError(
            "the os-virt re-run needs root on the runner (a throwaway user, delegated cgroups)",
            hint="run vmlab grade --rerun as root on a disposable runner",
        )
    missing = [t for t in TOOLS if shutil.which(t, path="/usr/sbin:/usr/bin:/sbin:/bin") is None]
    if missing:
        raise JailError(
            f"the re-run's jail needs {', '.join(missing)}", hint="apt-get install util-linux passwd iproute2"
        )
    name = JAIL_PREFIX + secrets.token_hex(4)
    made_user = False
    dirs: list[Path] = []
    cgroups: dict[Path, Path] = {}
    try:
        _run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
              "/usr/sbin/nologin", "--user-group", name])  # fmt: skip
        made_user = True
        pw = pwd.getpwnam(name)
        private = Path(tempfile.mkdtemp(prefix=name + "-root-"))
        dirs.append(private)
        home = Path(tempfile.mkdtemp(prefix=name + "-"))
        dirs.append(home)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        home.chmod(0o700)
        try:
            cgroups, v2 = _delegate(name, pw.pw_uid, pw.pw_gid, memory_mib, pids)
        except OSError as e:
            cgroups = {m: m / name for m in _mounts(name)}
            raise JailError(f"the re-run's jail: delegating cgroups failed: {e}") from e
        yield Jail(name, pw.pw_uid, pw.pw_gid, home, private, cgroups, v2, list(hide or []))
    finally:
        if made_user:
            kill_uid(pwd.getpwnam(name).pw_uid)
        for d in cgroups.values():
            if d.is_dir():
                for p in sorted((p for p in d.rglob("*") if p.is_dir()), reverse=True):
                    _remove_cgroup(p)
                _remove_cgroup(d)
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
        if made_user:
            subprocess.run(["userdel", name], capture_output=True, timeout=60, check=False)
            subprocess.run(["groupdel", name], capture_output=True, timeout=60, check=False)


def _mounts(name: str) -> list[Path]:
    """Where a half-made delegation may have left directories (for the clean-up)."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT]
    return [(CGROUP_ROOT / c).resolve() for c in V1_CONTROLLERS if (CGROUP_ROOT / c).is_dir()]


def leftovers() -> dict[str, list[str]]:
    """What jails left on this host (a test looks): users, cgroup directories, temp folders."""
    users = [p.pw_name for p in pwd.getpwall() if p.pw_name.startswith(JAIL_PREFIX)]
    groups: list[str] = []
    for root in (
        [CGROUP_ROOT, *[p for p in CGROUP_ROOT.iterdir() if p.is_dir()]] if CGROUP_ROOT.is_dir() else []
    ):
        with contextlib.suppress(OSError):
            groups += [str(d) for d in root.iterdir() if d.name.startswith(JAIL_PREFIX)]
    temps = [str(p) for p in Path(tempfile.gettempdir()).glob(JAIL_PREFIX + "*")]
    return {"users": users, "cgroups": groups, "temp": temps}
