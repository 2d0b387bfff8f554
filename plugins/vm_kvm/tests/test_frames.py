"""The service in-process: the node reads and writes the guest's Ethernet frames; the guest has no other network."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
import structlog
from omerta_vm_kvm import libvirt_host
from omerta_vm_kvm.errors import HypervisorUnavailableError
from omerta_vm_kvm.service import KvmHypervisor, guest_mac, namespace_name, tap_name
from omerta_vm_kvm.settings import parse_settings

from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.hypervisor import Hypervisor, VmFrames, VmRequest, VmState

pytestmark = [pytest.mark.root, pytest.mark.slow]

CONSUMER = PeerId.from_public_key(bytes(32))
GUEST_IP = "198.18.0.2"  # what the test guest's init configures
NODE_IP = "198.18.0.1"
NODE_MAC = bytes.fromhex("020000000001")
ETH_P_ARP = 0x0806


def arp_request(target_ip: str) -> bytes:
    ether = b"\xff" * 6 + NODE_MAC + struct.pack(">H", ETH_P_ARP)
    arp = struct.pack(">HHBBH", 1, 0x0800, 6, 4, 1)
    arp += NODE_MAC + ipaddress.IPv4Address(NODE_IP).packed + b"\x00" * 6 + ipaddress.IPv4Address(target_ip).packed
    return ether + arp


def read_arp_reply(sock: socket.socket, timeout: float) -> tuple[bytes, str] | None:
    """The first ARP reply to NODE_IP: (sender MAC, sender IP)."""
    sock.settimeout(0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            frame = sock.recv(2048)
        except TimeoutError:
            continue
        is_arp_reply = len(frame) >= 42 and frame[12:14] == struct.pack(">H", ETH_P_ARP) and frame[20:22] == b"\x00\x02"
        if is_arp_reply and frame[38:42] == ipaddress.IPv4Address(NODE_IP).packed:
            return frame[22:28], str(ipaddress.IPv4Address(frame[28:32]))
    return None


def links_in(namespace: str) -> list[str]:
    out = subprocess.run(["ip", "-n", namespace, "-o", "link"], capture_output=True, text=True, check=True).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


def test_the_node_reads_and_writes_the_guests_frames(images_dir: Path, tmp_path: Path) -> None:
    settings = parse_settings({"images_dir": str(images_dir), "domain_type": "qemu"}, tmp_path)
    service = KvmHypervisor(settings, tmp_path, structlog.get_logger())

    async def scenario() -> None:
        await service.start()
        try:
            assert isinstance(service, Hypervisor) and isinstance(service, VmFrames)
            request = VmRequest(consumer=CONSUMER, image="omk-test", memory_mib=128, disk_gib=1, lease_seconds=60)
            info = await service.create(request)
            assert info.state is VmState.READY
            assert links_in(namespace_name(info.vm_id)) == ["lo", tap_name(info.vm_id)]
            sock = await service.open_frames(info.vm_id)
            with sock:
                sock.send(arp_request(GUEST_IP))
                reply = await asyncio.to_thread(read_arp_reply, sock, 30.0)
            assert reply == (bytes.fromhex(guest_mac(info.vm_id).replace(":", "")), GUEST_IP)
            await service.destroy(info.vm_id)
            assert service.list() == []
        finally:
            await service.stop()

    asyncio.run(scenario())


def test_a_missing_libvirt_is_a_refusal_not_a_fake_vm(tmp_path: Path) -> None:
    uri = f"qemu+unix:///system?socket={tmp_path}/no-such-socket"
    reason = libvirt_host.unusable_reason(uri)
    assert reason is not None and "cannot reach libvirt" in reason
    settings = parse_settings({"libvirt_uri": uri}, tmp_path)
    service = KvmHypervisor(settings, tmp_path, structlog.get_logger())
    with pytest.raises(HypervisorUnavailableError, match="cannot reach libvirt"):
        asyncio.run(service.start())
