"""The libvirt domain XML of one VM.

Pure: turns a :class:`DomainSpec` into XML text with :mod:`xml.etree`. Touches nothing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

#: Ceiling on what the guest may draw from the host's /dev/urandom through its virtio RNG
#: (seeding the guest's CRNG takes 32 bytes; this leaves room for any guest's appetite).
RNG_BYTES_PER_SECOND = 65536


@dataclass(frozen=True)
class DomainSpec:
    name: str
    uuid: str
    domain_type: str  # "kvm" or "qemu" (TCG)
    vcpus: int
    memory_mib: int
    console_log: Path
    overlay: Path | None = None
    tap: str | None = None
    mac: str | None = None
    mtu: int | None = None
    #: The NIC offloads TCP segmentation and checksums both ways (its TCP bursts are 64 KiB super-frames).
    nic_offloads: bool = True
    kernel: Path | None = None
    initrd: Path | None = None
    cmdline: str = ""
    seed_iso: Path | None = None


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def domain_xml(spec: DomainSpec) -> str:
    root = ET.Element("domain", {"type": spec.domain_type})
    _sub(root, "name", spec.name)
    _sub(root, "uuid", spec.uuid)
    _sub(root, "memory", str(spec.memory_mib), unit="MiB")
    _sub(root, "vcpu", str(spec.vcpus))
    os_el = _sub(root, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine="q35")
    if spec.kernel is not None:
        _sub(os_el, "kernel", str(spec.kernel))
        if spec.initrd is not None:
            _sub(os_el, "initrd", str(spec.initrd))
        _sub(os_el, "cmdline", spec.cmdline)
    else:
        _sub(os_el, "boot", dev="hd")
    if spec.domain_type == "kvm":
        _sub(root, "cpu", mode="host-passthrough")
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        _sub(root, event, "destroy")
    # QEMU runs as the node's user: the per-VM files live in the node's private
    # state directory, which libvirt's qemu user may not traverse.
    seclabel = _sub(root, "seclabel", type="static", model="dac", relabel="no")
    _sub(seclabel, "label", "+0:+0")
    devices = _sub(root, "devices")
    if spec.overlay is not None:
        disk = _sub(devices, "disk", type="file", device="disk")
        _sub(disk, "driver", name="qemu", type="qcow2", discard="unmap")
        _sub(disk, "source", file=str(spec.overlay))
        _sub(disk, "target", dev="vda", bus="virtio")
    if spec.seed_iso is not None:
        seed = _sub(devices, "disk", type="file", device="disk")
        _sub(seed, "driver", name="qemu", type="raw")
        _sub(seed, "source", file=str(spec.seed_iso))
        _sub(seed, "target", dev="vdb", bus="virtio")
        _sub(seed, "readonly")
    if spec.tap is not None:
        nic = _sub(devices, "interface", type="ethernet")
        _sub(nic, "target", dev=spec.tap, managed="no")
        if spec.mac is not None:
            _sub(nic, "mac", address=spec.mac)
        _sub(nic, "model", type="virtio")
        if spec.mtu is not None:
            _sub(nic, "mtu", size=str(spec.mtu))
        # TCP segmentation and checksum offload, both ways, and nothing else: the guest sends
        # and takes TCP super-frames of up to 64 KiB, the node reads and writes them whole
        # behind virtio-net headers. UDP fragmentation offload stays off (the frame port
        # refuses its headers). Without offloads every frame is a finished frame.
        on = "on" if spec.nic_offloads else "off"
        driver = _sub(nic, "driver")
        _sub(driver, "host", csum=on, gso="off", tso4=on, tso6=on, ecn=on, ufo="off")
        _sub(driver, "guest", csum=on, tso4=on, tso6=on, ecn=on, ufo="off")
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=str(spec.console_log))
    _sub(serial, "target", port="0")
    # A virtio RNG fed from the host's /dev/urandom: without it a TCG guest's kernel takes
    # seconds to initialise its CRNG, and the guest's first getrandom() (making the SSH host
    # key) waits for that. Rate-limited so a guest cannot make the host spin on it.
    rng = _sub(devices, "rng", model="virtio")
    _sub(rng, "rate", bytes=str(RNG_BYTES_PER_SECOND), period="1000")
    _sub(rng, "backend", "/dev/urandom", model="random")
    _sub(devices, "controller", type="usb", model="none")
    _sub(devices, "memballoon", model="none")
    return ET.tostring(root, encoding="unicode")
