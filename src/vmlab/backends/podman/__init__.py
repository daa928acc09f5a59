"""The `podman` runtime: rootless Podman for normal users, and its health probe."""
