"""Fixtures of the os-virt lab's integration tests: the tiny image's root file system, unpacked once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SOLUTION = REPO / "labs" / "os-virt" / "solution" / "box.py"
SKELETON = REPO / "labs" / "os-virt" / "skeleton" / "box.py"


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import unavailable

    from vmlab.errors import VmlabError
    from vmlab.images.cache import get_image
    from vmlab.osvirt.box import unpack_rootfs

    if os.geteuid() != 0:
        pytest.skip("these tests run the box as root (the normal-user path has its own test)")
    try:
        tar = get_image("tiny", verify="quick").rootfs_tar
    except VmlabError as e:
        unavailable("the tiny image", f"{e} (vmlab image build tiny)")
    return unpack_rootfs(tar, tmp_path_factory.mktemp("osvirt") / "rootfs")
