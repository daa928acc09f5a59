"""Build the student's Valgrind tool (the observer) into a private prefix, once per tool version.

A Valgrind tool is not a plug-in: it is linked with the core into its own executable, so it is built
inside Valgrind's source tree. The recipe (measured on Debian 12, Valgrind 3.19.0, 2 cores; the same
steps build it against Debian 13's Valgrind 3.24.0):

1. Source of the installed version from Debian: `apt-get source --download-only valgrind=<version>`,
   which needs a `deb-src` entry (on Debian 12 the `Types: deb` line of
   /etc/apt/sources.list.d/debian.sources becomes `Types: deb deb-src`, then `apt-get update`), and
   `dpkg-source -x` (dpkg-dev) to unpack it with Debian's patches. Or a source tree the student gives.
2. The tool directory copied in as `observer/` (with a `tests/` folder: every tool needs one), the tool
   added to `TOOLS` in the top Makefile.am and both of its Makefiles to configure.ac's output list.
   Only `none`, `lackey` and `observer` are kept in TOOLS: lackey is the oracle the observer is
   compared with, built by the same compiler into the same prefix (the installed lackey differs a
   little: its preload library path differs, so the dynamic loader runs slightly different code).
3. `./autogen.sh`, `./configure --enable-only64bit --prefix=P`, `make -jN`, `make install`: ~95 s for
   the full tool set on these 2 cores, well under that for the reduced one.

The result is cached under VMLAB_HOME/procvm/tools/<key>/prefix, the key being the Valgrind version,
this recipe's version and the sha256 of every file of the tool directory, so editing ob_main.c
rebuilds and nothing else does. A lock file makes parallel builds of the same key wait for each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vmlab.errors import BackendError, NotAvailable, UsageError
from vmlab.paths import vmlab_home

RECIPE = "3"  # bump when the steps below change what gets built
TOOL_NAME = "observer"
BUILD_PROGRAMS = {
    "autoconf": "autoconf",
    "automake": "automake",
    "aclocal": "automake",
    "make": "make",
    "gcc": "gcc",
    "perl": "perl",
    # configure.ac calls PKG_CHECK_MODULES (3.24 for the MPI wrapper): without pkg.m4, autogen leaves
    # the macro unexpanded and configure fails with a syntax error instead of a missing tool.
    "pkg-config": "pkg-config",
}
SOURCES_FILE = Path("/etc/apt/sources.list.d/debian.sources")
# Releases the observer was built against and whose output the parsers were tested on (Debian 12 and
# 13; tests/unit/procvm/data/). Another release is tried all the same, with one line saying so.
KNOWN_VALGRIND = ("3.19", "3.24")


def valgrind_note(version: str) -> str | None:
    """One line when Valgrind is outside the releases the lab knows, else None."""
    if ".".join(version.split(".")[:2]) in KNOWN_VALGRIND:
        return None
    return (
        f"Valgrind {version} is outside the releases this lab knows ({', '.join(KNOWN_VALGRIND)}): "
        "a build or parse error may be a change of its tool API or output"
    )


Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class ToolBuild:
    """A built tool: run it as `launcher --tool=observer PROG`."""

    key: str
    prefix: Path
    launcher: Path
    valgrind_version: str
    cached: bool
    seconds: float
    log: Path | None


def procvm_home() -> Path:
    return vmlab_home() / "procvm"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def installed_version() -> str:
    """`valgrind --version` without the prefix: 3.19.0."""
    exe = shutil.which("valgrind")
    if exe is None:
        raise NotAvailable(
            "valgrind is not on PATH", hint="apt-get install -y --no-install-recommends valgrind"
        )
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return out.removeprefix("valgrind-")


def source_version(src: Path) -> str:
    """The version a source tree declares in configure.ac (3.19 spells it with m4_define parts)."""
    conf = src / "configure.ac"
    if not conf.is_file():
        raise UsageError(
            f"{src} is not a Valgrind source tree (no configure.ac)",
            hint="give the top folder of an unpacked valgrind-3.x source",
        )
    text = conf.read_text(errors="replace")
    parts = [
        re.search(rf"m4_define\(\[v_{p}_ver\],\s*\[([^\]]*)\]\)", text) for p in ("major", "minor", "micro")
    ]
    if all(parts):
        return ".".join(m.group(1) for m in parts if m)
    m = re.search(r"AC_INIT\(\[Valgrind\],\s*\[([\d.]+[^\]]*)\]", text)
    return m.group(1) if m else "unknown"


def tool_key(version: str, tool_dir: Path) -> str:
    h = hashlib.sha256(f"valgrind {version}\nrecipe {RECIPE}\n".encode())
    for p in sorted(tool_dir.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(tool_dir).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def check_tool_dir(tool_dir: Path) -> None:
    """A tool folder must bring build rules for observer-<arch>-<os> and at least one C file."""
    if not tool_dir.is_dir():
        raise UsageError(f"tool folder {tool_dir} does not exist", hint="--input tool=DIR")
    am = tool_dir / "Makefile.am"
    if not am.is_file():
        raise UsageError(
            f"{tool_dir} has no Makefile.am",
            hint="start from labs/process-vm/skeleton/observer/ (vmlab copies your folder in as observer/)",
        )
    if "observer-@VGCONF_ARCH_PRI@" not in am.read_text(errors="replace"):
        raise UsageError(
            f"{am} does not build observer-@VGCONF_ARCH_PRI@-@VGCONF_OS@",
            hint="keep the program names of labs/process-vm/skeleton/observer/Makefile.am",
        )
    if not any(tool_dir.glob("*.c")):
        raise UsageError(f"{tool_dir} has no .c file", hint="the tool's code goes in ob_main.c")


def missing_build_programs() -> list[str]:
    return [p for p in BUILD_PROGRAMS if shutil.which(p) is None]


def _run(cmd: list[str], cwd: Path, log: Path, what: str, progress: Progress, env: dict[str, str]) -> None:
    """Run one build command, its output appended to the log; progress every ~10 s on long ones."""
    with log.open("a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env)
        start = time.monotonic()
        next_note = start + 10
        while proc.poll() is None:
            time.sleep(0.5)
            if time.monotonic() >= next_note:
                compiled = log.read_text(errors="replace").count(" -c -o ")
                progress(f"{what}: {time.monotonic() - start:.0f} s, {compiled} files compiled so far")
                next_note += 10
    if proc.returncode != 0:
        tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:]
        errors = [ln for ln in log.read_text(errors="replace").splitlines() if "error:" in ln]
        detail = (errors or tail or ["no output"])[0].strip()
        raise BackendError(f"{what} failed: {detail[:200]}", hint=f"see the build log {log}")


# ---- the Valgrind source ------------------------------------------------------------------------


def _deb_version() -> str | None:
    r = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "valgrind"], capture_output=True, text=True, check=False
    )
    return r.stdout.strip() or None if r.returncode == 0 else None


def enable_deb_src(progress: Progress) -> None:
    """Add deb-src to the deb822 Types lines of Debian's sources, then apt-get update (root only)."""
    how = f"add deb-src to the Types lines of {SOURCES_FILE} and run apt-get update"
    if not SOURCES_FILE.is_file():
        raise NotAvailable(f"no source packages configured and no {SOURCES_FILE}", hint=how)
    if os.geteuid() != 0:
        raise NotAvailable("no deb-src entry and not root, so it cannot be added", hint=f"as root: {how}")
    text = SOURCES_FILE.read_text()
    patched = re.sub(r"^Types:[ \t]*deb[ \t]*$", "Types: deb deb-src", text, flags=re.MULTILINE)
    if patched != text:
        progress(f"adding deb-src to {SOURCES_FILE}")
        SOURCES_FILE.write_text(patched)
    progress("apt-get update (for the source package lists)")
    r = subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise BackendError(f"apt-get update failed: {(r.stderr.strip() or r.stdout)[-200:]}", hint=how)


def obtain_source(progress: Progress = _quiet) -> Path:
    """The unpacked Debian source of the installed Valgrind, cached in VMLAB_HOME/procvm/valgrind-src."""
    version = installed_version()
    deb = _deb_version()
    dest = procvm_home() / "valgrind-src" / (deb or version).replace(":", "_")
    tree = dest / "tree"
    if (tree / "configure.ac").is_file():
        return tree
    for prog, pkg in (("apt-get", "apt"), ("dpkg-source", "dpkg-dev")):
        if shutil.which(prog) is None:
            raise NotAvailable(
                f"{prog} is not on PATH, so the Valgrind source cannot be fetched",
                hint=f"apt-get install -y --no-install-recommends {pkg}, or give --source DIR",
            )
    with _locked(dest / ".lock"):
        if (tree / "configure.ac").is_file():
            return tree
        spec = f"valgrind={deb}" if deb else "valgrind"
        with tempfile.TemporaryDirectory(dir=dest, prefix=".dl-") as tmp:
            cmd = ["apt-get", "source", "--download-only", spec]
            progress(f"fetching the source of valgrind {deb or version} (apt-get source)")
            r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False)
            if r.returncode != 0 and "deb-src" in r.stderr:
                enable_deb_src(progress)
                r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False)
            if r.returncode != 0:
                raise BackendError(
                    f"apt-get source valgrind failed: {r.stderr.strip().splitlines()[-1:] or r.stdout}",
                    hint="give an unpacked source tree with --source DIR",
                )
            dsc = next(Path(tmp).glob("*.dsc"), None)
            if dsc is None:
                raise BackendError("apt-get source fetched no .dsc file", hint="--source DIR")
            progress("unpacking the source with Debian's patches (dpkg-source -x)")
            unpacked = Path(tmp) / "tree"
            r = subprocess.run(
                ["dpkg-source", "--no-check", "-x", dsc.name, "tree"],
                cwd=tmp,
                capture_output=True,
                text=True,
                check=False,
            )
            if r.returncode != 0 or not (unpacked / "configure.ac").is_file():
                raise BackendError(f"dpkg-source -x failed: {r.stderr.strip()[-200:]}", hint="--source DIR")
            os.replace(unpacked, tree)
    return tree


# ---- the build ----------------------------------------------------------------------------------


def register_tool(tree: Path) -> None:
    """Make `observer` a tool of this tree: TOOLS in Makefile.am, its Makefiles in configure.ac."""
    am = tree / "Makefile.am"
    text = am.read_text()
    text, n = re.subn(
        r"^TOOLS = \\\n(?:\t+\S+ \\\n)*\t+\S+\n", "TOOLS = none lackey observer\n", text, flags=re.M
    )
    text, m = re.subn(r"^EXP_TOOLS = \\\n(?:\t+\S+ \\\n)*\t+\S+\n", "EXP_TOOLS =\n", text, flags=re.M)
    if n != 1 or m != 1:
        raise BackendError(f"{am}: no TOOLS/EXP_TOOLS list found to register the tool in")
    am.write_text(text)
    conf = tree / "configure.ac"
    text = conf.read_text()
    if "observer/Makefile" not in text:
        text, n = re.subn(
            r"^(\s+)none/Makefile$",
            r"\1observer/Makefile\n\1observer/tests/Makefile\n\g<0>",
            text,
            flags=re.M,
        )
        if n != 1:
            raise BackendError(f"{conf}: no 'none/Makefile' entry to add the tool's Makefiles beside")
        conf.write_text(text)


def build_tool(
    tool_dir: Path,
    *,
    source: Path | None = None,
    progress: Progress = _quiet,
    jobs: int | None = None,
    force: bool = False,
) -> ToolBuild:
    """Build (or find in the cache) the tool in `tool_dir`; `source` is a Valgrind tree, else Debian's."""
    check_tool_dir(tool_dir)
    missing = missing_build_programs()
    if missing:
        pkgs = sorted({BUILD_PROGRAMS[p] for p in missing})
        raise NotAvailable(
            f"cannot build a Valgrind tool here: {', '.join(missing)} not on PATH",
            hint=f"apt-get install -y --no-install-recommends {' '.join(pkgs)}",
        )
    version = source_version(source) if source else installed_version()
    if note := valgrind_note(version):
        progress(note)
    key = tool_key(version, tool_dir)
    home = procvm_home() / "tools" / key
    prefix = home / "prefix"
    launcher = prefix / "bin" / "valgrind"
    stamp = home / "build.json"
    if stamp.is_file() and launcher.is_file() and not force:
        return ToolBuild(key, prefix, launcher, version, True, 0.0, _log_if(home / "build.log"))
    tree_src = source or obtain_source(progress)
    with _locked(home / ".lock"):
        if stamp.is_file() and launcher.is_file() and not force:
            return ToolBuild(key, prefix, launcher, version, True, 0.0, _log_if(home / "build.log"))
        start = time.monotonic()
        stamp.unlink(missing_ok=True)
        build = home / "build"
        log = home / "build.log"
        for d in (build, prefix):
            if d.exists():
                shutil.rmtree(d)
        log.write_text(f"valgrind {version}, tool {tool_dir.name}, key {key}\n")
        progress(f"copying the Valgrind {version} source and the tool folder")
        shutil.copytree(tree_src, build, symlinks=True)
        shutil.copytree(tool_dir, build / TOOL_NAME, symlinks=False)
        tests = build / TOOL_NAME / "tests"
        tests.mkdir(exist_ok=True)
        if not (tests / "Makefile.am").is_file():
            (tests / "Makefile.am").write_text("include $(top_srcdir)/Makefile.tool-tests.am\n")
        register_tool(build)
        env = {**os.environ, "LC_ALL": "C"}
        env.pop("VALGRIND_LIB", None)
        n = str(jobs or os.cpu_count() or 1)
        steps: list[tuple[str, list[str]]] = [
            ("autogen", ["./autogen.sh"]),
            ("configure", ["./configure", "--enable-only64bit", f"--prefix={prefix}"]),
            (f"make -j{n}", ["make", f"-j{n}"]),
            ("make install", ["make", "install"]),
        ]
        for what, cmd in steps:
            progress(f"{what} ...")
            _run(cmd, build, log, what, progress, env)
        if not launcher.is_file():
            raise BackendError(f"make install left no {launcher}", hint=f"see the build log {log}")
        seconds = time.monotonic() - start
        shutil.rmtree(build, ignore_errors=True)
        stamp.write_text(
            json.dumps({"key": key, "valgrind": version, "seconds": round(seconds, 1), "recipe": RECIPE})
        )
        progress(f"built in {seconds:.0f} s: {launcher}")
        return ToolBuild(key, prefix, launcher, version, False, seconds, log)


def _log_if(path: Path) -> Path | None:
    return path if path.is_file() else None


def default_tool_dir(root: Path) -> Path:
    """The lab's `[inputs.tool] default` (the skeleton handed out) in the lab folder `root`, read from
    its lab.toml so that `vmlab procvm tool build` builds the very folder `vmlab lab run process-vm`
    uses."""
    from vmlab.spec.lab import read_lab_toml

    tool = read_lab_toml(root / "lab.toml").get("inputs", {}).get("tool", {})
    default = tool.get("default") if isinstance(tool, dict) else None
    return root / (default if isinstance(default, str) else "skeleton/observer")
