"""Per-run files a guest boots with: the image's initramfs plus an overlay with this run's SSH key.

The image is shared and content-addressed; what differs per run (a fresh client key, authorized in
the guest) goes into a small overlay appended to a copy, so building an image never happens per run.
"""

from __future__ import annotations

from pathlib import Path


def per_run_initrd(base: Path, state: Path) -> Path:
    """The image's initramfs plus an overlay authorizing a fresh per-run key (0600, in the state dir)."""
    import stat

    from vmlab.guest.keys import new_client_key
    from vmlab.images.access import share_with_qemu
    from vmlab.images.archive import write_overlay_initrd

    public = new_client_key(state, "vmlab-run")
    dest = state / "initrd.cpio"
    write_overlay_initrd(
        base,
        dest,
        [
            ("root", stat.S_IFDIR | 0o700, b""),
            ("root/.ssh", stat.S_IFDIR | 0o700, b""),
            ("root/.ssh/authorized_keys", stat.S_IFREG | 0o600, f"{public} vmlab-run\n".encode()),
        ],
    )
    share_with_qemu(dest, secret=True)  # the image's initramfs inside holds the guest's host key
    return dest
