"""libvirt domain XML from a typed model, built with ElementTree (never string pasting).

Facts from docs/host-facts.md: direct kernel boot of the PVH vmlinux; serial to a file; QEMU user networking
via <qemu:commandline> (libvirt 9.0 here rejects passt) with SSH forwarded on 127.0.0.1 only; the NIC
pinned to pcie.0 addr 0x10 on q35 so it does not clash with libvirt's root port; no host-passthrough
CPU (it aborts QEMU under kvm_pvm).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vmlab.backends.base import NS_URI
from vmlab.images.firmware import FIRMWARE_NAMES as FIRMWARE_NAMES
from vmlab.images.firmware import FIRMWARE_PATHS as FIRMWARE_PATHS
from vmlab.images.firmware import resolve_firmware as resolve_firmware

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
NET_ID = "vmlabnet0"

ET.register_namespace("qemu", QEMU_NS)
ET.register_namespace("vmlab", NS_URI)


@dataclass
class DomainModel:
    name: str
    domain_type: Literal["qemu", "kvm"]
    memory_mib: int
    vcpus: int
    kernel: Path
    initrd: Path
    cmdline: str
    serial_log: Path
    ssh_port: int = 0  # 0: no forward yet (the port is chosen under a lock at start)
    machine: str = "q35"
    loader: Path | None = None  # a firmware ROM for -bios (qboot); None: QEMU's default SeaBIOS
    balloon: bool = False  # a virtio balloon with 1 s statistics instead of none
    uuid: str | None = None  # set after the first define, so a redefine updates the same domain
    metadata: dict[str, str] = field(default_factory=dict)

    def cpu_mode(self) -> str | None:
        """KVM: host-model (portable, never passthrough); TCG: QEMU's default model."""
        return "host-model" if self.domain_type == "kvm" else None

    def to_element(self) -> ET.Element:
        dom = ET.Element("domain", {"type": self.domain_type})
        ET.SubElement(dom, "name").text = self.name
        if self.uuid:
            ET.SubElement(dom, "uuid").text = self.uuid
        meta = ET.SubElement(dom, "metadata")
        inst = ET.SubElement(meta, f"{{{NS_URI}}}instance")
        for key, value in sorted(self.metadata.items()):
            ET.SubElement(inst, f"{{{NS_URI}}}{key}").text = value
        ET.SubElement(dom, "memory", {"unit": "MiB"}).text = str(self.memory_mib)
        ET.SubElement(dom, "vcpu").text = str(self.vcpus)
        os_el = ET.SubElement(dom, "os")
        ET.SubElement(os_el, "type", {"arch": "x86_64", "machine": self.machine}).text = "hvm"
        if self.loader is not None:
            # type='rom' is QEMU's -bios: qboot hands over to the PVH entry in ~ms where SeaBIOS
            # spends ~0.1 s of TCG time scanning devices.
            ET.SubElement(os_el, "loader", {"type": "rom", "readonly": "yes"}).text = str(self.loader)
        ET.SubElement(os_el, "kernel").text = str(self.kernel)
        ET.SubElement(os_el, "initrd").text = str(self.initrd)
        ET.SubElement(os_el, "cmdline").text = self.cmdline
        features = ET.SubElement(dom, "features")
        ET.SubElement(features, "acpi")
        mode = self.cpu_mode()
        if mode:
            ET.SubElement(dom, "cpu", {"mode": mode})
        ET.SubElement(dom, "clock", {"offset": "utc"})
        # A guest that reboots or panics stops: the readiness wait sees it at once and cleans up.
        for event in ("on_poweroff", "on_reboot", "on_crash"):
            ET.SubElement(dom, event).text = "destroy"
        devices = ET.SubElement(dom, "devices")
        serial = ET.SubElement(devices, "serial", {"type": "file"})
        ET.SubElement(serial, "source", {"path": str(self.serial_log)})
        ET.SubElement(serial, "target", {"port": "0"})
        console = ET.SubElement(devices, "console", {"type": "file"})
        ET.SubElement(console, "source", {"path": str(self.serial_log)})
        ET.SubElement(console, "target", {"type": "serial", "port": "0"})
        ET.SubElement(devices, "controller", {"type": "usb", "model": "none"})
        if self.balloon:  # the guest's driver reports its statistics to QEMU every second
            balloon = ET.SubElement(devices, "memballoon", {"model": "virtio"})
            ET.SubElement(balloon, "stats", {"period": "1"})
        else:
            ET.SubElement(devices, "memballoon", {"model": "none"})
        # Seeds the guest CRNG from the host: no ~1 s entropy wait at the first SSH connection.
        rng = ET.SubElement(devices, "rng", {"model": "virtio"})
        ET.SubElement(rng, "backend", {"model": "random"}).text = "/dev/urandom"
        if self.ssh_port:
            cmd = ET.SubElement(dom, f"{{{QEMU_NS}}}commandline")
            for arg in self.qemu_net_args():
                ET.SubElement(cmd, f"{{{QEMU_NS}}}arg", {"value": arg})
        return dom

    def qemu_net_args(self) -> list[str]:
        """User-mode NIC, restricted (no outbound traffic), SSH forwarded on loopback only."""
        bus = ",bus=pcie.0,addr=0x10" if self.machine.startswith(("q35", "pc-q35")) else ""
        return [
            "-netdev",
            f"user,id={NET_ID},restrict=on,hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22",
            "-device",
            f"virtio-net-pci,netdev={NET_ID}{bus},romfile=",
        ]

    def to_xml(self) -> str:
        el = self.to_element()
        ET.indent(el)
        return ET.tostring(el, encoding="unicode")


def parse_metadata(xml: str) -> dict[str, str]:
    """The vmlab <instance> element (as libvirt's metadata() returns it) back into a dict."""
    root = ET.fromstring(xml)
    return {child.tag.split("}", 1)[-1]: child.text or "" for child in root}
