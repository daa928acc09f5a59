"""vmlab's ready-marker stamp against a raw `virsh create` of the same domain XML, in alternating pairs.

The raw side is what a careful person would do by hand: `virsh create` of the XML vmlab generated
(same kernel, same per-run initrd, same command line; another name, SSH port and console log), then
the console log polled every 5 ms for the marker line, timed from just before `virsh create`. vmlab's
side is its own ladder: `serial_marker` minus `create_called` (which includes writing the per-run
initrd and defining the domain). The ratio of the medians says what vmlab's harness and its stamping
add to a start-up figure. Recorded, never asserted (TCG boot times vary with the host's load).

    .venv/bin/python -m tests.perf.startupratio --pairs 6
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any


def _raw_marker_s(xml: str, name: str, log: Path, uri: str, marker: str, timeout_s: float = 120.0) -> float:
    xml_file = log.with_suffix(".xml")
    xml_file.write_text(xml)
    pattern = re.compile(re.escape(marker.encode()) + rb" uptime=[0-9.]+\s")
    t0 = time.monotonic()
    subprocess.run(["virsh", "-q", "-c", uri, "create", str(xml_file)], check=True, capture_output=True)
    try:
        while time.monotonic() - t0 < timeout_s:
            try:
                if pattern.search(log.read_bytes()):
                    return time.monotonic() - t0
            except FileNotFoundError:
                pass
            time.sleep(0.005)
        raise TimeoutError(f"raw domain {name}: no marker within {timeout_s:.0f} s")
    finally:
        subprocess.run(["virsh", "-q", "-c", uri, "destroy", name], check=False, capture_output=True)


def run_pairs(pairs: int, image: str = "tiny", accel: str = "tcg") -> dict[str, Any]:
    from vmlab.backends import open_runtime
    from vmlab.backends.base import InstanceSpec
    from vmlab.backends.context import RunContext, parse_accel
    from vmlab.backends.ports import free_port
    from vmlab.paths import new_run_id

    ctx = RunContext(accel=parse_accel(accel))
    backend: Any = open_runtime("libvirt", ctx)
    run_id = new_run_id()
    vmlab_s: list[float] = []
    raw_s: list[float] = []
    order: list[str] = []
    try:
        # a defined, never started guest: its per-run files and XML are what the raw side boots
        prep = backend.create(InstanceSpec(name="rawprep", run_id=run_id, image=image, accel=ctx.accel))
        try:
            marker = prep.meta.get("ready_marker", "VMLAB_READY")
            state = Path(prep.meta["state_dir"])

            def raw(i: int) -> None:
                log = state / f"raw-{i}.log"
                model = dataclasses.replace(
                    prep.model,
                    name=f"vmlab-rawbench-{run_id}-{i}",
                    uuid=None,
                    serial_log=log,
                    ssh_port=free_port("127.0.0.1"),
                    metadata={},
                )
                raw_s.append(_raw_marker_s(model.to_xml(), model.name, log, backend.uri, marker))

            def ours(i: int) -> None:
                spec = InstanceSpec(name=f"v{i}", run_id=run_id, image=image, accel=ctx.accel)
                with backend.create(spec) as inst:
                    inst.start()
                    inst.wait_ready()
                    vmlab_s.append(inst.ladder_relative()["serial_marker"])

            for i in range(pairs):
                first, second = (raw, ours) if i % 2 == 0 else (ours, raw)
                order.append("raw,vmlab" if i % 2 == 0 else "vmlab,raw")
                first(i)
                second(i)
        finally:
            prep.destroy()
    finally:
        backend.close()
    ratio = statistics.median(vmlab_s) / statistics.median(raw_s)
    return {
        "benchmark": "startup-marker-ratio",
        "image": image,
        "accel": accel,
        "pairs": pairs,
        "order": order,
        "vmlab_serial_marker_s": [round(x, 4) for x in vmlab_s],
        "raw_virsh_marker_s": [round(x, 4) for x in raw_s],
        "vmlab_median_s": round(statistics.median(vmlab_s), 4),
        "raw_median_s": round(statistics.median(raw_s), 4),
        "ratio": round(ratio, 4),
        "goal": "ratio <= 1.03",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--image", default="tiny")
    ap.add_argument("--accel", choices=("tcg", "kvm"), default="tcg")
    args = ap.parse_args(argv)
    print(json.dumps(run_pairs(args.pairs, args.image, args.accel)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
