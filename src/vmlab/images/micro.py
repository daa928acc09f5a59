"""The `micro` recipe: tiny's user space on a minimal kernel built here from Debian's linux-source.

Under TCG most of a tiny guest's boot is the generic distribution kernel initialising subsystems a lab
guest never uses (ACPI, crypto self-tests, audit, LSMs, IPv6, ...). A kernel configured with
`allnoconfig` plus the few options in vm-images/micro/kernel.config (PVH, virtio-pci/net/rng, 8250,
initramfs, devtmpfs, unix/inet, tmpfs, proc/sys; built in, no modules) skips all of that.

The kernel takes minutes to build on 2 cores, so it has its own cache, $VMLAB_HOME/images/.kernels/
<key>/, keyed by the source package version, the config fragment, the compiler and this builder's
version: changing /init or the user space rebuilds the image in seconds and reuses the kernel.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from vmlab.errors import BackendError, NotAvailable, UsageError
from vmlab.images import debs
from vmlab.images.kernel import has_pvh_note
from vmlab.images.recipe import Recipe, load_recipe
from vmlab.images.tiny import build_userspace, write_initrd

Progress = Callable[[str], None]

# Bump when the kernel build steps change in a way the config fragment does not show.
KERNEL_BUILDER_VERSION = "micro-kernel-1"
BUILD_TOOLS = ("make", "gcc", "ld", "flex", "bison", "bc", "tar", "xz", "perl")
# objtool (always built for x86_64) needs libelf's headers.
BUILD_HEADERS = ("/usr/include/gelf.h", "/usr/include/libelf.h")
SETUP_HINT = "apt-get install build-essential flex bison bc libelf-dev (or: make setup)"
KERNEL_BUILD_TIMEOUT_S = 3 * 3600
# Compile steps as kbuild prints them without -s: "  CC      kernel/fork.o".
_STEP_RE = re.compile(r"^\s+(CC|AS|LD|AR|HOSTCC|HOSTLD|GEN|UPD|SYNC|OBJCOPY)\s+\S")
PROGRESS_EVERY_S = 15.0


def source_package(recipe: Recipe) -> str:
    """The versioned source package: the recipe's `kernel_source`, or what the meta package
    `linux-source` points at in this release (linux-source-6.1 on Debian 12, -6.12 on Debian 13)."""
    name = str(recipe.section("packages").get("kernel_source", "linux-source"))
    if name == "linux-source":
        return debs.resolve_meta(name, prefix="linux-source-")
    return name


def userspace_recipe(recipe: Recipe) -> Recipe:
    """The recipe whose /init and package list micro shares (tiny): same user space, fair comparison."""
    return load_recipe(str(recipe.section("userspace").get("from", "tiny")))


def resolve_packages(recipe: Recipe) -> tuple[str, dict[str, str]]:
    """(kernel source package, {package: version}) as apt would download them now."""
    src = source_package(recipe)
    user = [str(p) for p in userspace_recipe(recipe).section("packages").get("userspace", [])]
    return src, {name: debs.candidate_version(name) for name in [src, *user]}


def config_fragment(recipe: Recipe) -> Path:
    name = str(recipe.section("kernel").get("config", "kernel.config"))
    path = recipe.directory / name
    if not path.is_file():
        raise UsageError(f"{recipe.directory / 'recipe.toml'}: kernel config {path} does not exist")
    return path


def toolchain() -> str:
    """The compiler's version line: part of the kernel's cache key (another gcc, another vmlinux)."""
    check_build_tools()
    return debs.run(["gcc", "--version"]).splitlines()[0].strip()


def check_build_tools() -> None:
    """One clear error naming what is missing before a build that would fail minutes later."""
    missing = [t for t in BUILD_TOOLS if shutil.which(t) is None]
    missing += [h for h in BUILD_HEADERS if not Path(h).is_file()]
    if missing:
        raise NotAvailable(
            f"building the micro kernel needs {', '.join(missing)} (not found)", hint=SETUP_HINT
        )


def extra_inputs(recipe: Recipe) -> dict[str, object]:
    """What the image key needs besides recipe files and package versions."""
    return {
        "userspace_recipe": userspace_recipe(recipe).files_digest(),
        "kernel_key": kernel_key(recipe, toolchain()),
    }


def kernel_key(recipe: Recipe, gcc: str) -> str:
    src = source_package(recipe)
    frag = config_fragment(recipe)
    inputs = {
        "builder": KERNEL_BUILDER_VERSION,
        "source": f"{src}={debs.candidate_version(src)}",
        "config": hashlib.sha256(frag.read_bytes()).hexdigest(),
        "toolchain": gcc,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def parse_fragment(text: str) -> dict[str, str]:
    """{CONFIG_X: value} of a fragment; "# CONFIG_X is not set" becomes "n"."""
    wanted: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        m = re.match(r"^# (CONFIG_\w+) is not set$", line)
        if m:
            wanted[m.group(1)] = "n"
            continue
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.startswith("CONFIG_"):
            raise UsageError(f"kernel config fragment: cannot parse line {raw!r}")
        wanted[key] = value
    return wanted


def config_mismatches(wanted: dict[str, str], config_text: str) -> list[str]:
    """Options of the fragment that Kconfig dropped or changed (a dependency is missing)."""
    have = parse_fragment(config_text)
    wrong = []
    for key, value in wanted.items():
        got = have.get(key, "n")
        if got != value:
            wrong.append(f"{key}={value} (got {got})")
    return wrong


# ---- the kernel cache --------------------------------------------------------------------------


def kernels_dir(images: Path) -> Path:
    return images / ".kernels"


def cached_kernel(images: Path, key: str) -> Path | None:
    """The cached kernel directory for `key` when its vmlinux still matches its recorded sha256."""
    d = kernels_dir(images) / key
    meta = d / "kernel.json"
    if not meta.is_file() or not (d / "vmlinux").is_file():
        return None
    try:
        facts = json.loads(meta.read_text())
    except ValueError:
        return None
    from vmlab.spec.digest import sha256_file

    if facts.get("sha256") != sha256_file(d / "vmlinux"):
        return None
    return d


def ensure_kernel(recipe: Recipe, *, images: Path, work: Path, deb_cache: Path, progress: Progress) -> Path:
    """The directory holding vmlinux, .config and kernel.json, built now if not cached."""
    check_build_tools()
    key = kernel_key(recipe, toolchain())
    found = cached_kernel(images, key)
    if found is not None:
        release = json.loads((found / "kernel.json").read_text())["release"]
        progress(f"kernel cache hit: {key[:12]} ({release})")
        return found
    src_pkg = source_package(recipe)
    version = debs.candidate_version(src_pkg)
    progress(f"download {src_pkg}={version}")
    deb = debs.download(src_pkg, version, deb_cache)
    progress(f"extract {deb.name}")
    debs.extract(deb, work / "kdeb")
    tarballs = sorted((work / "kdeb" / "usr" / "src").glob("linux-source-*.tar.*"))
    if len(tarballs) != 1:
        raise BackendError(f"expected one source tarball in {deb.name}, found {[t.name for t in tarballs]}")
    progress(f"unpack {tarballs[0].name}")
    debs.run(["tar", "-xf", str(tarballs[0]), "-C", str(work)], timeout=1200)
    shutil.rmtree(work / "kdeb", ignore_errors=True)
    srcs = [p for p in work.iterdir() if p.is_dir() and p.name.startswith("linux-source-")]
    if len(srcs) != 1:
        raise BackendError(f"expected one linux-source-* tree after unpacking, found {len(srcs)}")
    src = srcs[0]
    kbuild = work / "kbuild"
    kbuild.mkdir()
    frag = config_fragment(recipe)
    make = ["make", "-C", str(src), f"O={kbuild}", "ARCH=x86_64"]
    progress(f"configure: allnoconfig + {frag.name}")
    debs.run([*make, f"KCONFIG_ALLCONFIG={frag}", "allnoconfig"])
    wrong = config_mismatches(parse_fragment(frag.read_text()), (kbuild / ".config").read_text())
    if wrong:
        raise UsageError(
            f"{frag}: Kconfig did not keep {', '.join(wrong[:5])}",
            hint="add the options they depend on to the fragment",
        )
    jobs = os.cpu_count() or 1
    progress(f"compile vmlinux with make -j{jobs} (minutes: {jobs} core(s) busy)")
    t0 = time.monotonic()
    _stream_make([*make, f"-j{jobs}", "vmlinux"], progress, t0)
    release = debs.run([*make, "-s", "kernelrelease"]).strip().splitlines()[-1]
    vmlinux = kbuild / "vmlinux"
    data = vmlinux.read_bytes()
    if not has_pvh_note(data):
        raise BackendError(
            f"the micro kernel {release} has no PVH entry note", hint=f"CONFIG_PVH=y in {frag}"
        )
    elapsed = time.monotonic() - t0
    progress(f"kernel {release} built in {elapsed:.0f} s ({len(data) / 2**20:.1f} MiB vmlinux)")
    return _store_kernel(images, key, kbuild, release, src_pkg, version, elapsed)


def _store_kernel(
    images: Path, key: str, kbuild: Path, release: str, src_pkg: str, version: str, elapsed: float
) -> Path:
    """Staged and renamed into place, so a crash never leaves a half kernel entry."""
    from vmlab.spec.digest import sha256_file

    root = kernels_dir(images)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    staging = root / f".build-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        shutil.copy(kbuild / "vmlinux", staging / "vmlinux")
        shutil.copy(kbuild / ".config", staging / "config")
        facts = {
            "key": key,
            "release": release,
            "source_package": f"{src_pkg}={version}",
            "sha256": sha256_file(staging / "vmlinux"),
            "build_seconds": round(elapsed, 1),
            "jobs": os.cpu_count() or 1,
            "builder": KERNEL_BUILDER_VERSION,
        }
        (staging / "kernel.json").write_text(json.dumps(facts, indent=2) + "\n")
        dest = root / key
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _stream_make(argv: list[str], progress: Progress, t0: float) -> None:
    """Run make in its own process group, reporting compiled steps every PROGRESS_EVERY_S seconds.

    Progress and the time limit keep ticking through the long silent steps (linking, objtool,
    kallsyms) because lines arrive through a queue read with a timeout.
    """
    env = dict(os.environ, KBUILD_BUILD_USER="vmlab", KBUILD_BUILD_HOST="vmlab", LC_ALL="C")
    env.setdefault("KBUILD_BUILD_TIMESTAMP", "1970-01-01")
    steps = 0
    tail: list[str] = []
    last = time.monotonic()
    with _process_group(argv, env) as (proc, lines):
        while True:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                line = ""
            if line is None:
                break
            if _STEP_RE.match(line):
                steps += 1
            elif line:
                tail = [*tail[-19:], line.rstrip()]
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY_S:
                progress(f"kernel build: {steps} steps done, {now - t0:.0f} s")
                last = now
            if now - t0 > KERNEL_BUILD_TIMEOUT_S:
                raise BackendError(f"the kernel build did not finish within {KERNEL_BUILD_TIMEOUT_S} s")
        rc = proc.wait()
    if rc != 0:
        errors = [t for t in tail if "error" in t.lower()] or tail
        raise BackendError(f"kernel build failed (exit {rc}): {' | '.join(errors[-3:])}")


@contextlib.contextmanager
def _process_group(
    argv: list[str], env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str | None]]]:
    """The process (own session) and a queue of its output lines, None at EOF.

    On any exception (Ctrl-C included) the whole group is killed; on leaving, the process is reaped,
    the reader thread joined and the pipe closed: no compiler outlives the build, no fd is left.
    """
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    lines: queue.Queue[str | None] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None

    def pump() -> None:
        for line in stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, name="make-output", daemon=True)
    reader.start()
    try:
        with _sigterm_raises():
            yield proc, lines
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    finally:
        proc.wait()
        reader.join(timeout=10)
        stdout.close()


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM becomes SystemExit(143) while the build runs, so the cleanup above still happens.

    make runs in its own session (Ctrl-C in the terminal reaches vmlab only), so without this a
    `kill` of vmlab would leave the compilers running.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(_signum: int, _frame: object) -> None:
        raise SystemExit(143)

    old = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


# ---- the image ---------------------------------------------------------------------------------


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
    images = deb_cache.parent
    kdir = ensure_kernel(recipe, images=images, work=work / "kernel", deb_cache=deb_cache, progress=progress)
    kfacts = json.loads((kdir / "kernel.json").read_text())
    shutil.copy(kdir / "vmlinux", out / "vmlinux")
    extracted = debs.fetch_and_extract(packages, deb_cache, work / "debs", progress, skip=[kernel_pkg])
    user = userspace_recipe(recipe)
    root = work / "rootfs"
    facts = build_userspace(
        user.directory / "init", extracted, root, out, release, progress, hostname=f"vmlab-{recipe.name}"
    )
    write_initrd(root, out, [], progress)
    return {"kernel_release": str(kfacts["release"]), "modules": [], **facts}
