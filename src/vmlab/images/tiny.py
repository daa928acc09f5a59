"""The `tiny` recipe: Debian kernel as a PVH vmlinux + busybox/dropbear initramfs + the same rootfs as tar.

Steps are plain functions over a staging directory so each is testable and the builder stays a list.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from vmlab.errors import BackendError
from vmlab.images import debs
from vmlab.images.access import share_with_qemu
from vmlab.images.archive import Node, write_cpio, write_tar
from vmlab.images.kernel import extract_vmlinux, has_pvh_note, module_load_order, plain_module
from vmlab.images.recipe import Recipe
from vmlab.paths import system_tool

Progress = Callable[[str], None]

PASSWD = "root:x:0:0:root:/root:/bin/sh\n"
GROUP = "root:x:0:\ntty:x:5:\n"
SHELLS = "/bin/sh\n/bin/ash\n"


def resolve_packages(recipe: Recipe) -> tuple[str, dict[str, str]]:
    """(kernel package, {package: version}) as apt would download them now."""
    pk = recipe.section("packages")
    kernel_pkg = debs.resolve_meta(str(pk.get("kernel_meta", "linux-image-amd64")))
    names = [kernel_pkg, *[str(p) for p in pk.get("userspace", [])]]
    return kernel_pkg, {name: debs.candidate_version(name) for name in names}


def build(
    recipe: Recipe,
    *,
    kernel_pkg: str,
    packages: dict[str, str],
    deb_cache: Path,
    work: Path,
    out: Path,
    release: str,
    progress: Progress,
) -> dict[str, object]:
    """Build into `out` (vmlinux, initrd.cpio, rootfs.tar, id_ed25519[.pub]); return manifest facts."""
    extracted = debs.fetch_and_extract(packages, deb_cache, work / "debs", progress)

    kdir = extracted[kernel_pkg]
    kernel_release = _kernel_release(kdir)
    progress(f"decompress vmlinuz-{kernel_release} to an ELF vmlinux (PVH boot)")
    vmlinux = extract_vmlinux((kdir / "boot" / f"vmlinuz-{kernel_release}").read_bytes())
    if not has_pvh_note(vmlinux):
        raise BackendError(f"kernel {kernel_release} has no PVH entry note: it cannot boot as a vmlinux")
    (out / "vmlinux").write_bytes(vmlinux)
    del vmlinux

    progress(f"depmod {kernel_release}")
    _modules_under_lib(kdir)
    debs.run([system_tool("depmod") or "depmod", "-b", str(kdir), kernel_release])
    moddir = kdir / "lib" / "modules" / kernel_release
    wanted = [str(m) for m in recipe.section("modules").get("load", [])]
    builtin = moddir / "modules.builtin"
    order = module_load_order(
        (moddir / "modules.dep").read_text(), wanted, builtin.read_text() if builtin.is_file() else ""
    )

    root = work / "rootfs"
    facts = build_userspace(
        recipe.directory / "init", extracted, root, out, release, progress, hostname=f"vmlab-{recipe.name}"
    )
    loaded = []
    for rel in order:
        out_rel, data = plain_module(rel, (moddir / rel).read_bytes())
        dest = root / "lib" / "modules" / out_rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        loaded.append(out_rel)
    write_initrd(root, out, loaded, progress)
    return {"kernel_release": kernel_release, "modules": loaded, **facts}


def build_userspace(
    init: Path,
    extracted: dict[str, Path],
    root: Path,
    out: Path,
    release: str,
    progress: Progress,
    *,
    hostname: str,
) -> dict[str, object]:
    """The user space every image shares (busybox, dropbear, keys, /init) and rootfs.tar from it.

    Shared by tiny and micro so guest and container run the same binaries whatever the kernel.
    Returns the manifest facts: host and client public keys, the shared libraries copied.
    """
    progress("assemble the root file system (busybox, dropbear, keys, /init)")
    _skeleton(root, hostname)
    _install_busybox(extracted["busybox-static"], root)
    libraries = _install_dropbear(extracted["dropbear-bin"], root)
    host_pub = _host_key(extracted["dropbear-bin"], root)
    client_pub = _client_key(out, root)
    (root / "etc" / "vmlab" / "release").write_text(release)
    shutil.copy(init, root / "init")
    os.chmod(root / "init", 0o755)
    container_only: list[Path] = []
    if "strace" in extracted:
        progress("add strace (container image only: counting system calls from inside)")
        strace_libs, container_only = _install_strace(extracted["strace"], root)
        libraries.update(strace_libs)
    progress("write rootfs.tar (container image)")
    write_tar(root, out / "rootfs.tar", exclude=("init",))
    for path in container_only:  # the guest's initramfs stays as small as before: boot time
        path.unlink()
    return {"host_public_key": host_pub, "client_public_key": client_pub, "libraries": libraries}


def write_initrd(root: Path, out: Path, modules: list[str], progress: Progress) -> None:
    """initrd.cpio from `root` (whose lib/modules holds `modules`), readable by libvirt's QEMU user."""
    progress(f"add {len(modules)} kernel modules and write initrd.cpio")
    (root / "etc" / "vmlab" / "modules.order").write_text("".join(f"{rel}\n" for rel in modules))
    write_cpio(root, out / "initrd.cpio", nodes=[Node("dev/console", 5, 1), Node("dev/ttyS0", 4, 64)])
    share_with_qemu(out / "vmlinux", secret=False)
    for f in ("initrd.cpio", "rootfs.tar"):  # both hold the guest's host key
        share_with_qemu(out / f, secret=True)


def _modules_under_lib(kdir: Path) -> None:
    """Debian 13's kernel package ships its modules under usr/lib/modules (merged /usr), Debian 12's
    under lib/modules, where `depmod -b` looks: move them there in our private extraction."""
    merged, legacy = kdir / "usr" / "lib" / "modules", kdir / "lib" / "modules"
    if merged.is_dir() and not legacy.exists():
        legacy.parent.mkdir(parents=True, exist_ok=True)
        merged.rename(legacy)


def pkg_file(pkg: Path, *candidates: str) -> Path:
    """The first of `candidates` (paths inside an extracted package) that exists: Debian 13 moved
    busybox from /bin to /usr/bin."""
    for rel in candidates:
        if (pkg / rel).is_file():
            return pkg / rel
    raise BackendError(f"{pkg.name}: none of {', '.join(candidates)} in the package")


def _kernel_release(kdir: Path) -> str:
    found = sorted(p.name.removeprefix("vmlinuz-") for p in (kdir / "boot").glob("vmlinuz-*"))
    if len(found) != 1:
        raise BackendError(f"expected one vmlinuz in the kernel package, found {found}")
    return found[0]


def _skeleton(root: Path, hostname: str) -> None:
    for d in (
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "lib/x86_64-linux-gnu",
        "lib64",
        "etc/dropbear",
        "etc/vmlab",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "var/log",
        "root",
    ):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    os.chmod(root / "root", 0o700)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (root / "etc" / "shells").write_text(SHELLS)
    (root / "etc" / "hostname").write_text(f"{hostname}\n")  # /init sets it: one init for every image


def _install_busybox(pkg: Path, root: Path) -> None:
    """busybox-static plus one symlink per applet, at the paths busybox itself reports."""
    src = pkg_file(pkg, "bin/busybox", "usr/bin/busybox")
    shutil.copy(src, root / "bin" / "busybox")
    os.chmod(root / "bin" / "busybox", 0o755)
    applets = debs.run([str(src), "--list-full"]).split()
    for applet in applets:
        dest = root / applet
        if applet == "bin/busybox" or dest.exists() or dest.is_symlink():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to("/bin/busybox")


def _install_dropbear(pkg: Path, root: Path) -> dict[str, str]:
    """dropbear and the shared libraries `ldd` names (host copies of Debian's packages, recorded)."""
    binary = pkg_file(pkg, "usr/sbin/dropbear", "sbin/dropbear")
    shutil.copy(binary, root / "usr" / "sbin" / "dropbear")
    libraries, _ = _copy_libraries(binary, root)
    return libraries


def _install_strace(pkg: Path, root: Path) -> tuple[dict[str, str], list[Path]]:
    """strace and its libraries, so a user who may not ptrace the container's root-owned processes
    from the host can count system calls inside it (tracing one's own children needs no capability).
    Returns the libraries and the files only strace needs (left out of the guest's initramfs)."""
    dest = root / "usr" / "bin" / "strace"
    src = pkg_file(pkg, "usr/bin/strace", "bin/strace")
    shutil.copy(src, dest)
    os.chmod(dest, 0o755)
    libraries, added = _copy_libraries(src, root)
    return libraries, [dest, *added]


def _copy_libraries(binary: Path, root: Path) -> tuple[dict[str, str], list[Path]]:
    """Copy the shared libraries `ldd` names (host copies of Debian's packages) into `root`.

    Returns {host path: owning package} for the manifest and the files that were not there before.
    """
    libraries: dict[str, str] = {}
    added: list[Path] = []
    for line in debs.run(["ldd", str(binary)]).splitlines():
        m = re.search(r"(/\S+)\s+\(0x", line)
        if not m:
            continue
        lib = Path(m.group(1))
        dest = root / lib.relative_to("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            added.append(dest)
        shutil.copy(lib, dest)  # follows the soname symlink to the real file
        libraries[str(lib)] = debs.owning_package(str(lib.resolve())) or "unknown"
    return libraries, added


def _host_key(pkg: Path, root: Path) -> str:
    """A fresh ed25519 host key in dropbear's format; its OpenSSH public line is pinned by the host."""
    key = root / "etc" / "dropbear" / "dropbear_ed25519_host_key"
    keygen = pkg_file(pkg, "usr/bin/dropbearkey", "bin/dropbearkey")
    text = debs.run([str(keygen), "-t", "ed25519", "-f", str(key)])
    os.chmod(key, stat.S_IRUSR | stat.S_IWUSR)
    for line in text.splitlines():
        if line.startswith("ssh-ed25519 "):
            return " ".join(line.split()[:2])
    raise BackendError("dropbearkey printed no ssh-ed25519 public key")


def _client_key(out: Path, root: Path) -> str:
    """The per-image client key (0600): private half stays on the host, public half is authorized."""
    from vmlab.guest.keys import new_client_key

    public = new_client_key(out, "vmlab-image")
    ssh = root / "root" / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    (ssh / "authorized_keys").write_text(public + " vmlab-image\n")
    os.chmod(ssh / "authorized_keys", 0o600)
    return public
