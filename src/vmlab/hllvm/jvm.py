"""Finding the JDK, compiling the lab's Java workloads once, and running the JVM.

Workloads are compiled with javac into a cache under vmlab_home()/hllvm/classes/<key>/, the key being
a hash of the sources and of javac's version, so a second run (or a parallel one) reuses the classes and
a JDK upgrade recompiles. We never use the single-file source launcher (`java Foo.java`): it compiles in
memory on every start, which would put javac's own warm-up into every timing.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vmlab.errors import BackendError, NotAvailable, UsageError, VmlabError
from vmlab.paths import vmlab_home


class JavaMissing(NotAvailable):
    """No java (or javac, or jasmin) on PATH."""


class JavacFailed(BackendError):
    """javac rejected a workload: the lab's own sources, so this is a kit problem, not the student's."""


class UnexpectedJvmOutput(BackendError):
    """The JVM printed something our parsers do not know (another JVM, another version)."""


class JvmFailed(BackendError):
    """The JVM exited with an error or ran past its time limit."""


class AssembleFailed(UsageError):
    """Jasmin could not assemble a student's .j file (exit 2: the file is the problem)."""


def require(program: str) -> Path:
    """The program's path, or one clear line saying how to install it (the package the lab's lab.toml
    `[tools]` declares; set-up installs the newest headless JDK the release offers)."""
    found = shutil.which(program)
    if found is None:
        from vmlab.hllvm import LAB
        from vmlab.labs.tools import install_hint

        raise JavaMissing(f"{program} is not installed", hint=install_hint(LAB, program))
    return Path(found)


def java_version(java: Path | None = None) -> str:
    """`17.0.15` from `java -version` (it prints to stderr: `openjdk version "17.0.15" ...`)."""
    exe = java or require("java")
    p = subprocess.run([str(exe), "-version"], capture_output=True, text=True, timeout=30, check=False)
    m = re.search(r'version "([^"]+)"', p.stderr + p.stdout)
    if not m:
        raise UnexpectedJvmOutput(f"cannot read the version from `{exe} -version`: {p.stderr.strip()[:120]}")
    return m.group(1)


def javac_version(javac: Path) -> str:
    p = subprocess.run([str(javac), "-version"], capture_output=True, text=True, timeout=60, check=False)
    text = (p.stdout + p.stderr).strip()
    if p.returncode != 0 or not text.startswith("javac "):
        raise UnexpectedJvmOutput(f"cannot read the version from `{javac} -version`: {text[:120]}")
    return text.split()[1]


@dataclass(frozen=True)
class Workloads:
    """Compiled workload classes: the class path to give `java -cp`."""

    classpath: Path
    javac_version: str
    key: str
    cached: bool


def workload_sources(src: Path) -> list[Path]:
    """The .java workloads of the lab folder's java/ (a step's ctx.lab_dir / "java")."""
    files = sorted(src.glob("*.java"))
    if not files:
        raise VmlabError(f"no Java workloads in {src}", hint="the lab folder is incomplete: git checkout it")
    return files


def compile_workloads(src_dir: Path, cache_root: Path | None = None) -> Workloads:
    """Compile every workload once per (sources, javac version); safe when two runs race."""
    javac = require("javac")
    version = javac_version(javac)
    files = workload_sources(src_dir)
    h = hashlib.sha256(f"javac {version}\n".encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    key = h.hexdigest()[:16]
    root = cache_root or vmlab_home() / "hllvm" / "classes"
    dest = root / key
    if (dest / ".complete").is_file():
        return Workloads(dest, version, key, cached=True)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    try:
        p = subprocess.run(
            [str(javac), "-d", str(tmp), *map(str, files)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if p.returncode != 0:
            first = next((ln for ln in p.stderr.splitlines() if ln.strip()), "no message")
            raise JavacFailed(f"javac failed: {first}", hint="check the JDK install (`javac -version`)")
        (tmp / ".complete").write_text(version + "\n")
        try:
            tmp.rename(dest)  # atomic: a racing run either sees nothing or the whole directory
        except OSError:
            if not (dest / ".complete").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Workloads(dest, version, key, cached=False)


@dataclass(frozen=True)
class JavaRun:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def run_java(
    args: list[str], *, timeout_s: float = 120.0, check: bool = True, cwd: Path | None = None
) -> JavaRun:
    """Run `java ARGS`; with check, a non-zero exit or a time-out is a JvmFailed naming the last line."""
    java = require("java")
    argv = [str(java), *args]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise JvmFailed(
            f"java {' '.join(args)} ran longer than {timeout_s:g} s", hint="lower iters/repeats"
        ) from None
    run = JavaRun(argv, p.returncode, p.stdout, p.stderr)
    if check and p.returncode != 0:
        last = next((ln for ln in reversed(p.stderr.splitlines()) if ln.strip()), f"exit {p.returncode}")
        raise JvmFailed(f"java {' '.join(args)} failed: {last.strip()}")
    return run
