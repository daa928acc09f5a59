"""The content-addressed image cache: $VMLAB_HOME/images/<name>/<sha256 of inputs>/.

An entry is built in a staging directory and renamed into place with its manifest, so a crash leaves
no half entry; a per-image lock keeps two parallel builds from racing; every output is verified by
sha256 before use, and a corrupted entry is set aside and rebuilt.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vmlab import __version__
from vmlab.errors import UsageError
from vmlab.images.model import ImageInfo, Manifest
from vmlab.images.recipe import load_recipe
from vmlab.paths import images_dir
from vmlab.spec.digest import sha256_file

log = logging.getLogger("vmlab")

# Bump when the build steps change in a way the recipe files do not show.
BUILDER_VERSION = "tiny-5"
Progress = Callable[[str], None]


def _digest(inputs: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _readable_dir(path: Path) -> None:
    """0755 all the way: libvirt's QEMU user must traverse into the cache (docs/host-facts.md)."""
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):
        os.chmod(path, 0o755)


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    d = images_dir() / name
    _readable_dir(images_dir())
    _readable_dir(d)
    with (d / ".lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def verify_entry(entry: Path, full: bool = True) -> tuple[Manifest | None, list[str]]:
    """The entry's manifest and what is wrong with it (empty list: sound).

    `full=False` checks presence and sizes only (milliseconds instead of hashing ~80 MB), for the
    backends' create(), whose time is part of the startup ladder; builds and `up` verify fully.
    """
    mpath = entry / "manifest.json"
    if not mpath.is_file():
        return None, [f"{mpath} is missing"]
    try:
        manifest = Manifest.model_validate_json(mpath.read_text())
    except (ValidationError, ValueError) as e:
        return None, [f"{mpath} is not a valid manifest: {str(e).splitlines()[0]}"]
    problems = []
    if manifest.digest != entry.name:
        problems.append(f"manifest digest {manifest.digest[:12]} does not match directory {entry.name[:12]}")
    for fname, want in sorted(manifest.outputs.items()):
        f = entry / fname
        if not f.is_file():
            problems.append(f"{fname} is missing")
        elif fname in manifest.sizes and f.stat().st_size != manifest.sizes[fname]:
            problems.append(f"{fname} has the wrong size")
        elif full and sha256_file(f) != want:
            problems.append(f"{fname} does not match its sha256 in the manifest")
    return manifest, problems


def entries(name: str) -> list[Path]:
    d = images_dir() / name
    if not d.is_dir():
        return []
    return sorted(
        (p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )


def get_image(name: str = "tiny", verify: str = "full") -> ImageInfo:
    """The newest sound entry of `name`; a clear UsageError when none was built or all are corrupt.

    verify: "full" (sha256 of every output) or "quick" (presence and sizes).
    """
    if verify not in ("full", "quick"):
        raise ValueError(f"verify must be 'full' or 'quick', not {verify!r}")
    problems: list[str] = []
    for entry in entries(name):
        manifest, wrong = verify_entry(entry, full=verify == "full")
        if manifest is not None and not wrong:
            return ImageInfo(name=name, digest=entry.name, path=entry, manifest=manifest)
        problems.append(f"{entry.name[:12]}: {'; '.join(wrong)}")
    if problems:
        raise UsageError(
            f"image {name!r} in {images_dir() / name} is corrupted ({problems[0]})",
            hint=f"vmlab image build {name}",
        )
    from vmlab.images.recipe import recipe_names

    if name not in recipe_names():
        known = ", ".join(recipe_names()) or "none"
        raise UsageError(f"unknown image {name!r} (recipes: {known})", hint="--image tiny")
    raise UsageError(
        f"image {name!r} is not built (looked in {images_dir() / name})", hint=f"vmlab image build {name}"
    )


def list_images() -> list[dict[str, object]]:
    """Every entry with its state (ok/corrupt) for `vmlab image ls`."""
    rows: list[dict[str, object]] = []
    root = images_dir()
    if not root.is_dir():
        return rows
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for entry in entries(d.name):
            manifest, wrong = verify_entry(entry)
            row: dict[str, object] = {
                "name": d.name,
                "digest": entry.name,
                "path": str(entry),
                "state": "ok" if not wrong else "corrupt",
                "problems": wrong,
            }
            if manifest is not None:
                info = ImageInfo(d.name, entry.name, entry, manifest)
                row |= {k: v for k, v in info.as_dict().items() if k not in row}
            rows.append(row)
    return rows


def remove_image(name: str, digest: str | None = None) -> list[str]:
    """Delete entries of `name` (all, or those whose digest starts with `digest`); their docker tags too."""
    removed: list[str] = []
    with _lock(name):
        for entry in entries(name):
            if digest and not entry.name.startswith(digest):
                continue
            manifest, _ = verify_entry(entry, full=False)
            shutil.rmtree(entry)
            removed.append(entry.name)
            if manifest is not None:
                from vmlab.images.docker_image import remove_docker_image

                remove_docker_image(manifest.docker_tag)
    if not removed:
        raise UsageError(
            f"no image {name!r}{' ' + digest if digest else ''} to remove", hint="vmlab image ls"
        )
    return removed


def build_image(
    name: str = "tiny", progress: Progress | None = None, force: bool = False, docker: bool = True
) -> ImageInfo:
    """Build (or reuse) the image from its recipe; import it into Docker when the daemon answers."""
    say = progress or log.info
    recipe = load_recipe(name)
    builder = _builder(name)
    from vmlab.images.firmware import FIRMWARE_NAMES

    firmware = str(recipe.section("image").get("firmware", ""))
    if firmware and firmware not in FIRMWARE_NAMES:
        raise UsageError(
            f"{recipe.directory / 'recipe.toml'}: unknown firmware {firmware!r}",
            hint=f"firmware = one of {', '.join(FIRMWARE_NAMES)}",
        )
    say("resolve package versions (apt-cache)")
    kernel_pkg, packages = builder.resolve_packages(recipe)
    inputs: dict[str, object] = {
        "builder_version": BUILDER_VERSION,
        "recipe": recipe.files_digest(),
        "packages": packages,
    }
    if hasattr(builder, "extra_inputs"):
        inputs |= builder.extra_inputs(recipe)
    digest = _digest(inputs)
    entry = images_dir() / name / digest
    with _lock(name):
        if entry.exists():
            manifest, wrong = verify_entry(entry)
            if manifest is not None and not wrong and not force:
                say(f"cache hit: {name} {digest[:12]} (inputs unchanged, outputs verified)")
                info = ImageInfo(name, digest, entry, manifest)
                if docker:
                    _docker(info, say)
                return info
            say(f"rebuilding {digest[:12]}: " + ("--force" if not wrong else "; ".join(wrong)))
            trash = entry.parent / f".trash-{secrets.token_hex(4)}"
            entry.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        staging = images_dir() / name / f".build-{secrets.token_hex(4)}"
        try:
            out = staging / "out"
            work = staging / "work"
            _readable_dir(out)
            work.mkdir(parents=True)
            release = f"name={name}\ndigest={digest}\n"
            facts: dict[str, object] = builder.build(
                recipe,
                kernel_pkg=kernel_pkg,
                packages=packages,
                deb_cache=images_dir() / ".debs",
                work=work,
                out=out,
                release=release,
                progress=say,
            )
            image_sec = recipe.section("image")
            say("hash outputs and write the manifest")
            files = [f for f in sorted(out.iterdir()) if f.is_file()]
            outputs = {f.name: sha256_file(f) for f in files}
            sizes = {f.name: f.stat().st_size for f in files}
            manifest = Manifest(
                name=name,
                digest=digest,
                created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                builder_version=f"{BUILDER_VERSION} (vmlab {__version__})",
                inputs=inputs,
                outputs=outputs,
                sizes=sizes,
                kernel_package=f"{kernel_pkg}={packages[kernel_pkg]}",
                packages=packages,
                docker_tag=f"vmlab/{name}:{digest[:12]}",
                cmdline=str(image_sec.get("cmdline", "console=ttyS0")),
                cmdline_tcg=str(image_sec.get("cmdline_tcg", "")),
                firmware=firmware,
                min_memory_mib=int(image_sec.get("min_memory_mib", 128)),
                default_memory_mib=int(image_sec.get("default_memory_mib", 256)),
                ready_marker=str(image_sec.get("ready_marker", "VMLAB_READY")),
                container_cmd=[str(c) for c in recipe.section("container").get("cmd", ["/bin/sh"])],
                **facts,  # type: ignore[arg-type]
            )
            (out / "manifest.json").write_text(manifest.model_dump_json(indent=2) + "\n")
            os.chmod(out / "manifest.json", 0o644)
            out.rename(entry)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    info = ImageInfo(name, digest, entry, manifest)
    say(f"built {name} {digest[:12]} in {entry}")
    if docker:
        _docker(info, say)
    return info


def _builder(name: str) -> Any:
    """The recipe's builder module (resolve_packages, build, optional extra_inputs), imported lazily."""
    if name == "tiny":
        from vmlab.images import tiny

        return tiny
    if name == "micro":
        from vmlab.images import micro

        return micro
    raise UsageError(f"image {name!r} has a recipe but no builder yet", hint="vmlab image build tiny")


def _docker(info: ImageInfo, say: Progress) -> None:
    from vmlab.errors import NotAvailable
    from vmlab.images.docker_image import ensure_docker_image

    try:
        created = ensure_docker_image(info)
    except NotAvailable as e:
        say(f"docker import skipped ({e.message}); the container backend imports it on first use")
        return
    say(f"docker image {info.docker_tag} " + ("imported" if created else "present"))
