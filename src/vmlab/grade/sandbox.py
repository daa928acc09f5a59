"""A locked-down container for a student's code: no network, a non-root user, CPU, memory, process and
time limits, a read-only root file system, and the inputs mounted read-only at /in.

The image holds a Python made from the grading host's own interpreter (its binary, shared libraries,
standard library) plus vmlab and the few packages the re-run entry points import. There is no image
registry on the runners, so the image is a `docker import` of a tar built here, tagged by a digest of
what went in (vmlab/rerun-python:<digest12>) and built only when that tag is missing.

What runs inside and what is the labs' solution material is not named here: every lab's `[rerun]`
declares its entry `modules` and its `solutions` (`ImagePlan`). The image holds vmlab without the
solutions' files, so a student's code cannot import or read them; `install_guard` additionally refuses
their import inside the container with `SolutionRefused`, which a hook reports as `uses-reference`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.abc
import importlib.machinery
import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from vmlab.errors import BackendError, NotAvailable

REPO = "vmlab/rerun-python"
PREFIX = "/opt/py"
NOBODY = "65534:65534"
_SKIP_STDLIB = {
    "site-packages",
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "__pycache__",
}
# Never the key `vmlab.owner`, which `vmlab ls` and `down --all` select instances on: a grading
# container is not an instance, and `down --all` beside a `vmlab grade --rerun` must not remove it.
LABELS = {"vmlab.rerun": "grade", "vmlab.purpose": "rerun"}


def is_solution(module: str, solutions: Iterable[str]) -> bool:
    """A solution names a module or a package: the package's submodules are solution material too."""
    return any(module == s or module.startswith(s + ".") for s in solutions)


@dataclass(frozen=True)
class ImagePlan:
    """What the image must be able to run (`entry`) and must not hold (`solutions`), as the labs say."""

    entry: tuple[str, ...]
    solutions: tuple[str, ...]


def plan_from_labs() -> ImagePlan:
    """The union of every catalogued lab's `[rerun]` modules and solutions.

    One image serves every lab, so it leaves out every lab's solutions. A lab.toml that does not parse
    stops the build: its solutions are unknown, and an image that might hold them is not built.
    """
    from vmlab.labs.catalog import lab_names, load_lab

    specs = [lab.rerun for lab in map(load_lab, lab_names()) if lab.rerun is not None]
    entry = sorted({m for s in specs for m in s.modules})
    solutions = sorted({m for s in specs for m in s.solutions})
    return ImagePlan(entry=tuple(entry), solutions=tuple(solutions))


class SolutionRefused(ImportError):
    """A student's code imported solution material inside the re-run; `name` is the module it asked for."""


class SolutionGuard(importlib.abc.MetaPathFinder):
    """First on sys.meta_path in the container: every import of a solution module raises SolutionRefused
    and is remembered, even one the student's code catches (on the student's machine it would have
    succeeded, so what they measured may be vmlab's code)."""

    def __init__(self, solutions: Sequence[str]) -> None:
        self.solutions = tuple(solutions)
        self.refused: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not is_solution(fullname, self.solutions):
            return None
        asked = _asked_for(fullname)
        if asked not in self.refused:
            self.refused.append(asked)
        raise SolutionRefused(
            f"{asked} is not available in the re-run: it is vmlab's own solution", name=asked
        )


def _asked_for(fullname: str) -> str:
    """The module the import statement named: importing a.b.c finds a.b first, inside a.b.c's load."""
    best = fullname
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name.startswith("_find_and_load") and "importlib._bootstrap" in code.co_filename:
            name = frame.f_locals.get("name")
            if isinstance(name, str) and name.startswith(fullname + ".") and len(name) > len(best):
                best = name
        frame = frame.f_back
    return best


def install_guard(solutions: Sequence[str]) -> SolutionGuard:
    """Refuse the solutions from now on; call it before the student's code is loaded. A solution module
    already imported is forgotten, also as its parent package's attribute (`from pkg import sub`)."""
    for name in [n for n in sys.modules if is_solution(n, solutions)]:
        del sys.modules[name]
        parent, _, child = name.rpartition(".")
        if parent in sys.modules and getattr(sys.modules[parent], child, None) is not None:
            with contextlib.suppress(AttributeError):
                delattr(sys.modules[parent], child)
    guard = SolutionGuard(solutions)
    sys.meta_path.insert(0, guard)
    importlib.invalidate_caches()
    return guard


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 120.0
    cpus: float = 1.0
    memory_mb: int = 512
    pids: int = 64
    kvm: bool = False


@dataclass(frozen=True)
class SandboxResult:
    rc: int | None
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float

    def result_json(self) -> dict[str, Any] | None:
        """The JSON object a re-run prints as its last line, or None when it printed none."""
        try:
            data = json.loads(self.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return None
        return data if isinstance(data, dict) else None

    def stderr_tail(self) -> str:
        return (self.stderr.strip().splitlines() or ["no output"])[-1][:200]


def _stdlib() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _interpreter() -> Path:
    base = getattr(sys, "_base_executable", sys.executable)
    return Path(os.path.realpath(base))


def _site_files(plan: ImagePlan) -> dict[str, Path]:
    """Top-level installed modules the entry points import, asked of a fresh interpreter.

    An entry module that imports solution material would break in the pruned image: that stops the build
    here, with the names, rather than every re-run later."""
    code = (
        "import importlib, sys\n"
        f"for m in {list(plan.entry)!r}: importlib.import_module(m)\n"
        f"sol = {list(plan.solutions)!r}\n"
        "for name, mod in sorted(sys.modules.items()):\n"
        "    if any(name == s or name.startswith(s + '.') for s in sol): print('!', name)\n"
        "    f = getattr(mod, '__file__', None) or ''\n"
        "    if '.' not in name and 'site-packages' in f: print(name, f)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    if out.returncode != 0:
        raise BackendError(f"cannot list the re-run's imports: {out.stderr.strip().splitlines()[-1:]}")
    leaked = [line[2:] for line in out.stdout.splitlines() if line.startswith("! ")]
    if leaked:
        raise BackendError(
            f"the re-run's entry modules import solution material: {', '.join(leaked)}",
            hint="an entry module ([rerun] modules) must not import a [rerun] solutions module at top level",
        )
    import vmlab

    found: dict[str, Path] = {
        "vmlab": Path(vmlab.__file__).parent
    }  # an editable install is not in site-packages
    for line in out.stdout.splitlines():
        name, _, f = line.partition(" ")
        p = Path(f)
        found[name] = p.parent if p.name == "__init__.py" else p
    return found


def module_of(rel: Path) -> str:
    """The dotted module a file under site-packages belongs to: pkg/sub/mod.cpython-311.so -> pkg.sub.mod,
    pkg/sub/__init__.py -> pkg.sub; a data file pkg/sub/x.json -> pkg.sub.x (inside the package)."""
    parts = list(rel.parts[:-1])
    stem = rel.name.split(".", 1)[0]
    if stem != "__init__":
        parts.append(stem)
    return ".".join(parts)


def _libraries(binaries: list[Path]) -> set[Path]:
    """Shared libraries `ldd` lists for these files, and the dynamic loader."""
    libs: set[Path] = set()
    for b in binaries:
        p = subprocess.run(["ldd", str(b)], capture_output=True, text=True, timeout=30, check=False)
        for m in re.finditer(r"(/\S+\.so[^\s]*)", p.stdout):
            libs.add(Path(m.group(1)))
    return libs


def _sources(plan: ImagePlan | None = None) -> list[tuple[str, Path]]:
    """(path in the image, path here) of every file that goes in: never a file of a solution module."""
    plan = plan or plan_from_labs()
    items: list[tuple[str, Path]] = []
    py = _interpreter()
    items.append((f"{PREFIX}/bin/python3", py))
    std = _stdlib()
    ver = std.name
    for root, dirs, files in os.walk(std):
        rel = Path(root).relative_to(std)
        dirs[:] = sorted(
            d
            for d in dirs
            if not (rel == Path(".") and (d in _SKIP_STDLIB or d.startswith("config-")))
            and d != "__pycache__"
        )
        for fname in sorted(files):
            items.append((f"{PREFIX}/lib/{ver}/{(rel / fname).as_posix()}", Path(root) / fname))
    site = f"{PREFIX}/lib/{ver}/site-packages"
    for name, path in _site_files(plan).items():
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if not f.is_file() or "__pycache__" in f.parts or f.suffix in (".pyc", ".html", ".j2"):
                    continue
                rel = Path(name) / f.relative_to(path)
                if not is_solution(module_of(rel), plan.solutions):
                    items.append((f"{site}/{rel.as_posix()}", f))
        elif not is_solution(name, plan.solutions):
            items.append((f"{site}/{path.name}", path))
    binaries = [py] + [src for _dst, src in items if src.suffix == ".so" or ".so." in src.name]
    for lib in sorted(_libraries(binaries)):
        if lib.exists():
            target = f"{PREFIX}/lib/{lib.name}" if lib.name.startswith("libpython") else lib.as_posix()
            items.append((target, lib))
    return items


def _digest(items: list[tuple[str, Path]]) -> str:
    """Cheap and stable: what goes where, with each file's size and mtime."""
    h = hashlib.sha256(b"vmlab rerun image 2\n")  # 2: solutions left out
    h.update(repr(sorted(LABELS.items())).encode())  # containers inherit the image's labels
    for dst, src in items:
        st = src.stat()
        h.update(f"{dst}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _tar(items: list[tuple[str, Path]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        leaves = {"tmp", "in", "etc"} | {str(Path(dst.lstrip("/")).parent) for dst, _ in items}
        every = {p for leaf in leaves for p in [leaf, *map(str, Path(leaf).parents)]} - {".", ""}
        for d in sorted(every):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        for name, data in (
            (
                "etc/passwd",
                b"root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/tmp:/bin/false\n",
            ),
            ("etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for dst, src in items:
            info = tarfile.TarInfo(dst.lstrip("/"))
            data = src.read_bytes()
            info.size = len(data)
            info.mode = 0o755 if os.access(src, os.X_OK) and src.suffix != ".py" else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ensure_image(client: Any, progress: Any = None, plan: ImagePlan | None = None) -> str:
    """The tag of the re-run image, imported now when missing (through the Docker runtime's code)."""
    from vmlab.backends.docker.locked import has_image, import_image

    items = _sources(plan)
    tag = f"{REPO}:{_digest(items)[:12]}"
    if has_image(client, tag):
        return tag
    if progress:
        progress(f"building the re-run image {tag} from this host's Python ({len(items)} files)")
    ver = _stdlib().name
    changes = [
        f"ENV LD_LIBRARY_PATH={PREFIX}/lib",
        f"ENV PATH={PREFIX}/bin",
        "ENV PYTHONDONTWRITEBYTECODE=1",
        f"ENV PYTHONPATH={PREFIX}/lib/{ver}/site-packages",
        *(f"LABEL {k}={v}" for k, v in LABELS.items()),
    ]
    # Older tags are kept: another grading run (another checkout, another CI job on this runner) may be
    # using one right now. docs/grading.md says how to remove them.
    return import_image(client, _tar(items), tag, changes)


class Sandbox:
    """Runs argv in a fresh container per call; the container and its input folder never outlive it."""

    def __init__(self, progress: Any = None, plan: ImagePlan | None = None) -> None:
        from vmlab.images.docker_image import docker_client

        self.client = docker_client()
        self.plan = plan or plan_from_labs()
        self.image = ensure_image(self.client, progress, self.plan)

    def run(self, argv: list[str], files: dict[str, bytes], limits: Limits) -> SandboxResult:
        with _input_dir(files) as folder:
            return self._run(argv, folder, limits)

    def _run(self, argv: list[str], folder: Path, limits: Limits) -> SandboxResult:
        """One locked-down container of the Docker runtime (backends/docker/locked.py)."""
        from vmlab.backends.docker.locked import Locked, run_locked

        devices: tuple[str, ...] = ()
        groups: tuple[str, ...] = ()
        if limits.kvm:
            if not os.path.exists("/dev/kvm"):
                raise NotAvailable("/dev/kvm is missing on this runner", hint="see docs/runner.md")
            devices, groups = ("/dev/kvm",), (str(os.stat("/dev/kvm").st_gid),)
        run = Locked(
            image=self.image,
            argv=(f"{PREFIX}/bin/python3", *argv),
            labels=dict(LABELS),
            mounts={str(folder): "/in"},
            user=NOBODY,
            timeout_s=limits.timeout_s,
            cpus=limits.cpus,
            memory_mib=limits.memory_mb,
            pids=limits.pids,
            devices=devices,
            group_add=groups,
        )
        r = run_locked(self.client, run)
        return SandboxResult(r.rc, r.stdout, r.stderr, r.timed_out, r.duration_s)


@contextlib.contextmanager
def _input_dir(files: dict[str, bytes]) -> Iterator[Path]:
    """A private temp folder the container's user may read (0755/0644), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="vmlab-rerun-"))
    try:
        folder.chmod(0o755)
        for name, data in files.items():
            p = folder / name
            if p.parent != folder:
                raise BackendError(f"re-run input {name!r} must be a plain file name")
            p.write_bytes(data)
            p.chmod(0o644)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
