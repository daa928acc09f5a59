"""Parameters, percentiles and the balloon device of the memory and density tasks."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from pydantic import ValidationError

from vmlab.backends.libvirt.domain_xml import DomainModel
from vmlab.systemvm.balloon import BalloonParams
from vmlab.systemvm.density import DensityParams, _fits
from vmlab.systemvm.fleet import percentile
from vmlab.systemvm.ksm import KsmParams


def test_percentile_linear_between_ranks() -> None:
    xs = [4.0, 1.0, 3.0, 2.0]
    # sorted 1 2 3 4; rank (n-1)q/100: p50 -> 1.5 -> 2 + 0.5*(3-2) = 2.5; p99 -> 2.97 -> 3 + 0.97 = 3.97
    assert percentile(xs, 50) == pytest.approx(2.5)
    assert percentile(xs, 99) == pytest.approx(3.97)
    assert percentile(xs, 0) == 1.0 and percentile(xs, 100) == 4.0
    assert percentile([0.7], 50) == percentile([0.7], 99) == 0.7
    with pytest.raises(ValueError):
        percentile([], 50)


def test_balloon_params_bounds() -> None:
    assert BalloonParams().shrink_to_mib < BalloonParams().memory_mib
    with pytest.raises(ValidationError, match="below memory_mib"):
        BalloonParams(memory_mib=256, shrink_to_mib=256)
    with pytest.raises(ValidationError, match="third"):
        BalloonParams(memory_mib=256, touch_mib=96)  # the guest's tmpfs holds ~96 of 256 MiB
    with pytest.raises(ValidationError):
        BalloonParams(shrink_to_mib=32)


def test_density_ks_sorted_and_bounded() -> None:
    assert DensityParams(ks=[8, 1, 2, 2]).ks == [1, 2, 8]
    for bad in ([], [0], [65]):
        with pytest.raises(ValidationError):
            DensityParams(ks=bad)
    with pytest.raises(ValidationError):
        DensityParams(kinds=["native"])  # type: ignore[list-item]


def test_density_batches_fit_the_memory_budget() -> None:
    gib = 1024**3
    assert _fits("vm", 8, None, 24 * gib) is None  # 8 x 160 MiB of 60 % of 24 GiB
    why = _fits("vm", 8, None, 2 * gib)  # 1280 MiB > 60 % of 2048 MiB = 1228 MiB
    assert why is not None and "1280 MiB" in why
    assert _fits("container", 8, None, 2 * gib) is None


def test_ksm_params_defaults_match_the_issue() -> None:
    p = KsmParams()
    assert (p.guests, p.pages_to_scan, p.sleep_millisecs, p.scans) == (4, 1000, 20, 2)
    with pytest.raises(ValidationError):
        KsmParams(guests=0)


def _model(balloon: bool) -> DomainModel:
    return DomainModel(
        name="vmlab-x-g",
        domain_type="qemu",
        memory_mib=256,
        vcpus=1,
        kernel=Path("/k"),
        initrd=Path("/i"),
        cmdline="console=ttyS0",
        serial_log=Path("/c"),
        balloon=balloon,
    )


def test_memballoon_virtio_on_request_none_by_default() -> None:
    plain = ET.fromstring(_model(False).to_xml()).findall("devices/memballoon")
    assert [m.get("model") for m in plain] == ["none"]
    with_balloon = ET.fromstring(_model(True).to_xml())
    (mb,) = with_balloon.findall("devices/memballoon")
    assert mb.get("model") == "virtio"
    assert mb.find("stats") is not None and mb.find("stats").get("period") == "1"  # type: ignore[union-attr]
    # nothing keeps QEMU from marking guest RAM mergeable (KSM): no <nosharepages/>
    assert with_balloon.find("memoryBacking") is None
