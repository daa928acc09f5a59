"""The start-up benchmark of vmlab's own stamping: its `serial_marker` against a raw `virsh create` of
the same domain XML polled every 5 ms, medians of alternating pairs (VMLAB_PERF_PAIRS, default 6).
Appended with the host fingerprint to $VMLAB_PERF_OUT (default runs/perf/boot.jsonl). The goal it
records (not asserts): ratio <= 1.03. Asserts are about the measurement: every pair produced both."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import pytest
from tests.perf.startupratio import run_pairs

pytestmark = [pytest.mark.perf, pytest.mark.libvirt, pytest.mark.slow]


def test_marker_ratio_against_raw_virsh(libvirt_available: str, tiny_image_built: None) -> None:
    from vmlab.host.fingerprint import host_info

    pairs = int(os.environ.get("VMLAB_PERF_PAIRS", "6"))
    result = run_pairs(pairs, "tiny", "tcg")
    assert len(result["vmlab_serial_marker_s"]) == len(result["raw_virsh_marker_s"]) == pairs
    out = Path(os.environ.get("VMLAB_PERF_OUT", "runs/perf/boot.jsonl"))
    out.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": host_info().model_dump(mode="json"),
        **result,
    }
    with out.open("a") as f:
        f.write(json.dumps(entry) + "\n")
    print(f"\nvmlab/raw at the marker: {result['ratio']:.3f} (goal <= 1.03) -> {out}", file=sys.stderr)


@pytest.fixture
def tiny_image_built() -> None:
    from vmlab.images import build_image

    build_image("tiny", progress=lambda m: print(f"[tiny image] {m}", file=sys.stderr))
