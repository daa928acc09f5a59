"""The podman runtime's refusals (no container is started): as root it says in one line that it
serves normal users; `ls` and `down` stay silent about it where it cannot serve."""

from __future__ import annotations

import os

import pytest

from vmlab.errors import NotAvailable


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal is root's")
def test_root_is_refused_in_one_line_and_ls_stays_silent() -> None:
    from vmlab.backends import listing_scopes, open_runtime, probe

    with pytest.raises(NotAvailable) as e:
        open_runtime("podman")
    line = e.value.one_line()
    assert "\n" not in line and "normal users only" in line and "rlimit" in line
    assert e.value.exit_code == 3
    assert listing_scopes("podman") == []
    assert probe("podman").status == "fail"


def test_a_missing_podman_names_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    from vmlab.backends.podman import backend as podman_backend
    from vmlab.backends.podman import probe as podman_probe

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(podman_probe.shutil, "which", lambda _name: None)
    refused = podman_probe.refusal()
    assert refused is not None and refused.hint == "apt-get install podman uidmap fuse-overlayfs slirp4netns"
    assert podman_backend.listing_scopes(None) == []
