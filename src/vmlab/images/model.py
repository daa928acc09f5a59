"""What a built image is: the manifest on disk and the ImageInfo the backends use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

MANIFEST_SCHEMA = 1


class Manifest(BaseModel):
    """Written last into a cache entry: its presence means the entry is complete.

    `inputs` are what the cache key was computed from; `outputs` map file name -> sha256 so a corrupted
    entry is detected before a guest boots from it.
    """

    schema_version: int = MANIFEST_SCHEMA
    name: str
    digest: str
    created_at: str
    builder_version: str
    inputs: dict[str, Any]
    outputs: dict[str, str]
    sizes: dict[str, int] = Field(default_factory=dict)
    kernel_release: str
    kernel_package: str
    packages: dict[str, str] = Field(default_factory=dict)
    libraries: dict[str, str] = Field(default_factory=dict)
    host_public_key: str
    client_public_key: str
    docker_tag: str
    cmdline: str
    cmdline_tcg: str = ""  # appended under TCG only: skips calibrations costly to emulate
    min_memory_mib: int
    default_memory_mib: int
    ready_marker: str
    container_cmd: list[str]
    modules: list[str] = Field(default_factory=list)
    firmware: str = ""  # "" (QEMU's SeaBIOS) or "qboot"; resolved to a ROM path per host at create


@dataclass(frozen=True)
class ImageInfo:
    """A verified cache entry, with the paths a backend needs."""

    name: str
    digest: str
    path: Path
    manifest: Manifest

    @property
    def kernel(self) -> Path:
        """The uncompressed ELF vmlinux, booted via PVH (no self-decompression under TCG)."""
        return self.path / "vmlinux"

    @property
    def initrd(self) -> Path:
        return self.path / "initrd.cpio"

    @property
    def rootfs_tar(self) -> Path:
        """The same user space as the initramfs, for `docker import`."""
        return self.path / "rootfs.tar"

    @property
    def client_key(self) -> Path:
        """The per-image ed25519 client key (OpenSSH format, 0600), authorized in the guest."""
        return self.path / "id_ed25519"

    @property
    def host_public_key(self) -> str:
        """The guest's ed25519 host key ("ssh-ed25519 AAAA..."), pinned: SSH verifies it."""
        return self.manifest.host_public_key

    @property
    def docker_tag(self) -> str:
        return self.manifest.docker_tag

    @property
    def min_memory_mib(self) -> int:
        return self.manifest.min_memory_mib

    @property
    def default_memory_mib(self) -> int:
        return self.manifest.default_memory_mib

    @property
    def cmdline(self) -> str:
        return self.manifest.cmdline

    @property
    def cmdline_tcg(self) -> str:
        return self.manifest.cmdline_tcg

    @property
    def firmware(self) -> str:
        return self.manifest.firmware

    @property
    def ready_marker(self) -> str:
        return self.manifest.ready_marker

    @property
    def short_digest(self) -> str:
        return self.digest[:12]

    def as_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "name": self.name,
            "digest": self.digest,
            "path": str(self.path),
            "kernel": str(self.kernel),
            "initrd": str(self.initrd),
            "rootfs_tar": str(self.rootfs_tar),
            "client_key": str(self.client_key),
            "host_public_key": m.host_public_key,
            "docker_tag": m.docker_tag,
            "kernel_release": m.kernel_release,
            "kernel_package": m.kernel_package,
            "firmware": m.firmware or "seabios",
            "packages": m.packages,
            "min_memory_mib": m.min_memory_mib,
            "created_at": m.created_at,
            "outputs": m.outputs,
            "size_bytes": sum((self.path / f).stat().st_size for f in m.outputs if (self.path / f).exists()),
        }
