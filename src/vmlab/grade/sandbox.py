"""A locked-down container for a student's code: no network, a non-root user, CPU, memory, process and
time limits, a read-only root file system, and the inputs mounted read-only at /in.

The image holds a Python made from the grading host's own interpreter (its binary, shared libraries,
standard library) plus vmlab and the few packages the re-run entry points import. There is no image
registry on the runners, so the image is a `docker import` of a tar built here, tagged by a digest of
what went in (vmlab/rerun-python:<digest12>) and built only when that tag is missing.
"""

from __future__ import annotations

import contextlib
import hashlib
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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmlab.errors import BackendError, NotAvailable

REPO = "vmlab/rerun-python"
PREFIX = "/opt/py"
NOBODY = "65534:65534"
# what runs inside: their imports decide which installed packages go into the image
ENTRY_MODULES = (
    "vmlab.isa.rerun",
    "vmlab.isa.gen",
    "vmlab.isa.engines.switch",
    "vmlab.kvmapi.rerun",
    "vmlab.kvmapi.vmm",
    "vmlab.kvmapi.programs",
)
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
LABELS = {"vmlab.owner": "vmlab", "vmlab.purpose": "rerun"}


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


def _site_files() -> dict[str, Path]:
    """Top-level installed modules the entry points import, asked of a fresh interpreter."""
    code = (
        "import importlib, sys, sysconfig\n"
        f"for m in {ENTRY_MODULES!r}: importlib.import_module(m)\n"
        "std = sysconfig.get_paths()['stdlib']\n"
        "for name, mod in sorted(sys.modules.items()):\n"
        "    f = getattr(mod, '__file__', None) or ''\n"
        "    if '.' not in name and 'site-packages' in f: print(name, f)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    if out.returncode != 0:
        raise BackendError(f"cannot list the re-run's imports: {out.stderr.strip().splitlines()[-1:]}")
    import vmlab

    found: dict[str, Path] = {
        "vmlab": Path(vmlab.__file__).parent
    }  # an editable install is not in site-packages
    for line in out.stdout.splitlines():
        name, _, f = line.partition(" ")
        p = Path(f)
        found[name] = p.parent if p.name == "__init__.py" else p
    return found


def _libraries(binaries: list[Path]) -> set[Path]:
    """Shared libraries `ldd` lists for these files, and the dynamic loader."""
    libs: set[Path] = set()
    for b in binaries:
        p = subprocess.run(["ldd", str(b)], capture_output=True, text=True, timeout=30, check=False)
        for m in re.finditer(r"(/\S+\.so[^\s]*)", p.stdout):
            libs.add(Path(m.group(1)))
    return libs


def _sources() -> list[tuple[str, Path]]:
    """(path in the image, path here) of every file that goes in."""
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
    for name, path in _site_files().items():
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file() and "__pycache__" not in f.parts and f.suffix not in (".pyc", ".html", ".j2"):
                    items.append((f"{site}/{name}/{f.relative_to(path).as_posix()}", f))
        else:
            items.append((f"{site}/{path.name}", path))
    binaries = [py] + [src for _dst, src in items if src.suffix == ".so" or ".so." in src.name]
    for lib in sorted(_libraries(binaries)):
        if lib.exists():
            target = f"{PREFIX}/lib/{lib.name}" if lib.name.startswith("libpython") else lib.as_posix()
            items.append((target, lib))
    return items


def _digest(items: list[tuple[str, Path]]) -> str:
    """Cheap and stable: what goes where, with each file's size and mtime."""
    h = hashlib.sha256(b"vmlab rerun image 1\n")
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


def ensure_image(client: Any, progress: Any = None) -> str:
    """The tag of the re-run image, imported now when missing."""
    from docker.errors import APIError, ImageNotFound

    items = _sources()
    tag = f"{REPO}:{_digest(items)[:12]}"
    try:
        client.images.get(tag)
        return tag
    except ImageNotFound:
        pass
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
    repo, version = tag.split(":")
    try:
        client.api.import_image_from_data(_tar(items), repository=repo, tag=version, changes=changes)
        client.images.get(tag)
    except (APIError, ImageNotFound) as e:
        raise BackendError(f"docker import of the re-run image failed: {e}") from e
    # Older tags are kept: another grading run (another checkout, another CI job on this runner) may be
    # using one right now. docs/grading.md says how to remove them.
    return tag


class Sandbox:
    """Runs argv in a fresh container per call; the container and its input folder never outlive it."""

    def __init__(self, progress: Any = None) -> None:
        from vmlab.images.docker_image import docker_client

        self.client = docker_client()
        self.image = ensure_image(self.client, progress)

    def run(self, argv: list[str], files: dict[str, bytes], limits: Limits) -> SandboxResult:
        with _input_dir(files) as folder:
            return self._run(argv, folder, limits)

    def _run(self, argv: list[str], folder: Path, limits: Limits) -> SandboxResult:
        from docker.errors import APIError, DockerException

        kwargs: dict[str, Any] = dict(
            image=self.image,
            command=[f"{PREFIX}/bin/python3", *argv],
            user=NOBODY,
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": "size=32m,mode=1777"},
            mem_limit=f"{limits.memory_mb}m",
            memswap_limit=f"{limits.memory_mb}m",
            nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            volumes={str(folder): {"bind": "/in", "mode": "ro"}},
            working_dir="/tmp",
            labels=dict(LABELS),
            detach=True,
        )
        if limits.kvm:
            if not os.path.exists("/dev/kvm"):
                raise NotAvailable("/dev/kvm is missing on this runner", hint="see docs/runner.md")
            kwargs["devices"] = ["/dev/kvm:/dev/kvm:rw"]
            kwargs["group_add"] = [str(os.stat("/dev/kvm").st_gid)]
        container = None
        t0 = time.monotonic()
        try:
            container = self.client.containers.create(**kwargs)
            container.start()
            timed_out = False
            try:
                status = container.wait(timeout=limits.timeout_s)
                rc: int | None = int(status.get("StatusCode", -1))
            except Exception:  # requests' ReadTimeout / ConnectionError: the time limit
                timed_out, rc = True, None
                with contextlib.suppress(DockerException):
                    container.kill()
            duration = time.monotonic() - t0
            out = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
            err = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
            return SandboxResult(rc=rc, stdout=out, stderr=err, timed_out=timed_out, duration_s=duration)
        except APIError as e:
            raise BackendError(f"the re-run container failed: {e.explanation or e}") from e
        finally:
            if container is not None:
                with contextlib.suppress(DockerException):
                    container.remove(force=True)


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
