"""The container half of an image: `docker import` of rootfs.tar, tagged vmlab/<name>:<digest12>."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from vmlab.errors import BackendError, NotAvailable
from vmlab.images.model import ImageInfo


def docker_client(timeout: int = 30) -> Any:
    """A Docker client from DOCKER_HOST, else the current docker context, else the default socket."""
    import os

    import docker
    from docker.errors import DockerException

    try:
        if not os.environ.get("DOCKER_HOST"):
            try:
                from docker.context import ContextAPI

                ctx = ContextAPI.get_current_context()
                host = ctx.Host if ctx is not None else None
            except Exception:  # a broken context file must not hide the default socket
                host = None
            if host:
                client = docker.DockerClient(base_url=host, timeout=timeout)
                client.ping()
                return client
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except (DockerException, OSError) as e:  # requests' ConnectionError is an OSError
        first = str(e).splitlines()[0][:160]
        raise NotAvailable(f"Docker daemon not reachable: {first}", hint="make setup (starts dockerd)") from e


def ensure_docker_image(info: ImageInfo, client: Any = None) -> bool:
    """Import the image unless its tag exists already; True when it was imported now."""
    from docker.errors import APIError, ImageNotFound

    client = client or docker_client()
    try:
        client.images.get(info.docker_tag)
        return False
    except ImageNotFound:
        pass
    repo, tag = info.docker_tag.split(":", 1)
    labels = {"vmlab.image": info.name, "vmlab.digest": info.digest, "vmlab.owner": "vmlab"}
    changes = [f"LABEL {k}={v}" for k, v in labels.items()]
    changes.append("CMD " + json.dumps(info.manifest.container_cmd))
    try:
        with info.rootfs_tar.open("rb") as f:
            client.api.import_image_from_data(f.read(), repository=repo, tag=tag, changes=changes)
        client.images.get(info.docker_tag)
    except (APIError, ImageNotFound) as e:
        raise BackendError(f"docker import of {info.rootfs_tar} failed: {e}") from e
    return True


def remove_docker_image(tag: str) -> None:
    """Best effort: a missing daemon or tag is not an error when removing the cache entry."""
    from docker.errors import APIError, ImageNotFound

    try:
        client = docker_client()
    except NotAvailable:
        return
    with contextlib.suppress(ImageNotFound, APIError):
        client.images.remove(tag, force=True)
